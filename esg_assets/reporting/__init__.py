"""What people read about a day: the daily summary and the run history."""
