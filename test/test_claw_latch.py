"""The users' claw latch (execution/claw_latch.py), on their numbers: threshold 50, 5 model steps, closed at 90."""

import numpy as np
import pytest

from groot_ros.execution.claw_latch import ClawLatch
from groot_ros.execution.config import ClawLatchConfig, ExecutionConfigError

ON = ClawLatchConfig(enabled=True)
STEP = 0.1  # model step (s)
TICK = 0.01  # control tick (s)


def run(latch: ClawLatch, rows: list[list[float]], t0: float = 0.0) -> np.ndarray:
    """Each model row held for one model step of control ticks, as the control loop sends it; the last command."""
    out, t = None, t0
    for row in rows:
        for _ in range(round(STEP / TICK)):
            out = latch.apply(np.array(row, float), t)
            t += TICK
    return out


def test_five_closed_steps_latch_that_claw_only():
    latch = ClawLatch(ON, 2, STEP)
    assert run(latch, [[60, 10]] * 4).tolist() == [60, 10]  # 4 steps: not yet
    latch = ClawLatch(ON, 2, STEP)
    rows = [[60, 10]] * 4 + [[60, 70]] + [[20, 20]]  # left closed 5 steps, right once; then both asked open
    assert run(latch, rows).tolist() == [90, 20]
    assert latch.latched.tolist() == [True, False]


def test_a_dip_below_the_threshold_starts_the_count_again():
    latch = ClawLatch(ON, 2, STEP)
    assert run(latch, [[60, 60], [40, 60], [60, 60], [60, 60], [60, 60], [60, 60]]).tolist() == [60, 90]


def test_off_by_default_and_bad_settings_are_named():
    latch = ClawLatch(ClawLatchConfig(), 2, STEP)
    assert run(latch, [[95, 95]] * 10).tolist() == [95, 95]
    with pytest.raises(ExecutionConfigError, match=r"steps must be an integer >= 1, got 0(.|\n)*threshold must be "
                                                   r"within 0..100 claw units, got 150"):
        ClawLatchConfig(threshold=150, steps=0)
