"""The daily-partitioned software-defined assets of the job."""
