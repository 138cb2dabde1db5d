"""The daily ratings: active accounts and their ESG ratings, the daily job over the graph, its schedule."""

from dagster import Definitions

from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.daily_ratings.job import esg_daily_job
from esg_assets.defs.daily_ratings.schedule import esg_daily_schedule

defs = Definitions(
    assets=[active_accounts, esg_ratings], jobs=[esg_daily_job], schedules=[esg_daily_schedule]
)
