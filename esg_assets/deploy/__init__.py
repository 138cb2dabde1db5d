"""Code locations of the job on other executors: each is ``code_location`` with that executor, day-locked."""
