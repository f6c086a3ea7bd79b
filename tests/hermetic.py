"""A guard that keeps the default test run on loopback.

``install()`` adds an audit hook that refuses, with an error saying why, a
``socket.connect`` to anything but this machine: a boto3 client that lost
its moto ``endpoint_url`` fails instead of calling AWS. It sees what goes
through Python's ``socket`` module (boto3, urllib and other blocking
clients), not what uvloop's transports or a subprocess such as pip connect;
running the suite in a network namespace of its own (``unshare -n``) checks
those.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

__all__ = ["NonLoopbackConnection", "install"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", ""})


class NonLoopbackConnection(OSError):
    """A test of the default run tried to leave this machine."""


def install(hint: str) -> None:
    """Refuse non-loopback connections for the rest of the process.

    Audit hooks cannot be removed: call this once, only for a hermetic run.
    ``hint`` says how to run the test that needs the network.
    """

    def guard(event: str, args: tuple[Any, ...]) -> None:
        if event != "socket.connect":
            return
        sock, address = args
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or _is_local(address[0]):
            return
        raise NonLoopbackConnection(
            f"the default test run stays on loopback, but this test connects to {address!r}; {hint}"
        )

    sys.addaudithook(guard)


def _is_local(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
