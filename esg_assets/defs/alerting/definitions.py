"""Alerting: the sensors that page and email on a failed, late, overdue or canceled day, and resolve it."""

from dagster import Definitions

from esg_assets.defs.alerting.sensors import all_sensors

defs = Definitions(sensors=all_sensors)
