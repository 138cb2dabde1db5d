"""Who is asking (the OS user and groups) and whether they may read the day's files."""
