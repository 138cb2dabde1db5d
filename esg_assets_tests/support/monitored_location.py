"""A tiny code location for the daemon tests: the daily job's name and partitions, an op that oversleeps."""

import time

from dagster import Definitions, job, op

from esg_assets.core.partitions import daily_partitions
from esg_assets.defs.daily_ratings.job import DAILY_JOB_NAME


@op
def sleep_a_minute() -> None:
    time.sleep(60)


# Three seconds: run monitoring must stop it long before the op wakes up.
@job(name=DAILY_JOB_NAME, partitions_def=daily_partitions, tags={"dagster/max_runtime": "3"})
def esg_daily_job() -> None:
    sleep_a_minute()


defs = Definitions(jobs=[esg_daily_job])
