"""The audit trail of the day's files: who published, read or deleted which file, hash-chained."""
