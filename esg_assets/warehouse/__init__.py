"""The warehouse tables of the job and the SQL that reads and writes them."""
