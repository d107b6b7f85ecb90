"""A free loopback TCP port for servers the tests start (gunicorn, `scripts/run.sh`)."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1, released for the caller's server to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
