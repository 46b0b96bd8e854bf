"""Polling for tests that stand in for the node: check a condition while streaming a command, as the node does."""

from __future__ import annotations

import time
from typing import Callable


def poll_until(predicate: Callable[[], object], timeout: float, every: Callable[[], None] | None = None,
               period: float = 0.02) -> bool:
    """Polls predicate; calls every() each round (a command stream, as the node sends at a fixed rate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())
