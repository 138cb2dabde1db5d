"""The error both report stores raise when another process holds a lock they were asked for."""


class LockedError(Exception):
    """Another process holds the lock: the message says which and, where known, since when and by whom."""
