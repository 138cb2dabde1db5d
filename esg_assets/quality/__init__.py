"""Data quality of a day: the failure threshold and the checks of the published file."""
