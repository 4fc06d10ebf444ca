"""Bounded network access for torchvision's own download code.

Offline machines must fail fast with a clear message, never hang: every download the
project starts runs under :func:`socket_timeout`.
"""
import contextlib
import socket

DOWNLOAD_TIMEOUT_S = 15.0

# What torchvision and urllib raise when there is no network (DNS failure, refused
# connection, time-out, HTTP error pages from a proxy).
NETWORK_ERRORS = (OSError, RuntimeError, ValueError)


@contextlib.contextmanager
def socket_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    """Give every socket opened inside the block a time-out of ``seconds``."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)
