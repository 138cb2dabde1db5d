"""What each run did: the run_history table, and the metrics pushed when a daily run ends."""

from dagster import Definitions

from esg_assets.defs.run_metrics.run_history import run_history
from esg_assets.defs.run_metrics.sensors import run_metrics_sensors

defs = Definitions(assets=[run_history], sensors=run_metrics_sensors)
