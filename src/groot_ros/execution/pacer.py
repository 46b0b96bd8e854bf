"""The one fixed-rate loop rule of groot_ros (the node's control loop, the commander's streams, demo recording).

Ticks lie on a grid (start + k * period) of an injected clock, so a test can run them in simulated time. A tick
that comes late runs at once; when the loop overran by a whole period or more, the ticks that were due meanwhile
are skipped, never sent as a burst (a robot must not get a backlog of stale commands in one go), and counted in
`missed`: that count is what the node reports, so a test can tell a slow machine from a node that drops ticks.
"""

from __future__ import annotations

import math
import time
from typing import Callable


class Pacer:
    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.ticks = 0  # ticks run
        self.missed = 0  # ticks skipped after overruns
        self._start: float | None = None
        self._index = -1

    def restart(self) -> None:
        """The next `wait` starts a new grid at once (a sequence after a pause must not count the pause as missed)."""
        self._start = None

    def wait(self) -> float:
        """Sleeps until the next tick is due and returns its time on the grid (the clock's time of the tick)."""
        now = self.clock()
        if self._start is None:
            self._start, self._index = now, 0
        else:
            self._index += 1
            due = self._start + self._index * self.period
            if now < due:
                self.sleep(due - now)
            else:
                latest = math.floor((now - self._start) / self.period + 1e-9)  # the last tick already due
                if latest > self._index:
                    self.missed += latest - self._index
                    self._index = latest
        self.ticks += 1
        return self._start + self._index * self.period
