"""The ratings domain: how an API response becomes a row of the ratings file."""
