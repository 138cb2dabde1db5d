"""The day's files: the ratings file and the summary, staged, checked and published together."""

from dagster import Definitions

from esg_assets.defs.day_files.day_files import day_files

defs = Definitions(assets=[day_files])
