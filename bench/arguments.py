"""Command-line pieces the benchmark tools share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

__all__ = ["add_connect_batch", "bounded"]

N = TypeVar("N", int, float)

#: Chargers connecting at once. The gateway listens with asyncio's default
#: backlog of 100; a larger burst overflows the accept queue, the kernel drops
#: SYNs, and those clients retry only after 1 s (see bench/README.md).
DEFAULT_CONNECT_BATCH = 100


def bounded(kind: Callable[[str], N], low: N, high: N) -> Callable[[str], N]:
    """An argparse type: ``kind(text)`` if it lies in [low, high]."""

    def convert(text: str) -> N:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value

    return convert


def add_connect_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect-batch",
        type=bounded(int, 1, 1000),
        default=DEFAULT_CONNECT_BATCH,
        help=f"chargers connecting and booting at once (default {DEFAULT_CONNECT_BATCH})",
    )
