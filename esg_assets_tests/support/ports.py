"""Free TCP ports on loopback, for servers that must be told their port before they start."""

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for servers that must be told their port before they start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
