"""Streaming authenticated encryption of the day's files and the key files it uses."""
