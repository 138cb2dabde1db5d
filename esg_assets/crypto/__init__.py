"""The day's files as AWS Encryption SDK messages, and the keys that encrypt them."""
