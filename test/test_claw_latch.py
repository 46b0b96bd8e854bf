"""The users' claw latch (execution/claw_latch.py), on their numbers: threshold 50, 5 steps, closed at 90."""

import numpy as np

from groot_ros.execution.claw_latch import ClawLatch, ClawLatchConfig

ON = ClawLatchConfig(enabled=True)


def run(latch: ClawLatch, rows: list[list[float]], ticks_per_step: int = 10) -> np.ndarray:
    """Each model row held for `ticks_per_step` control ticks, as the control loop sends it; the last command."""
    out = None
    for step, row in enumerate(rows):
        for _ in range(ticks_per_step):
            out = latch.apply(np.array(row, float), step)
    return out


def test_five_closed_steps_latch_that_claw_only_and_a_release_frees_it():
    latch = ClawLatch(ON, claws=2)
    rows = [[60, 10]] * 4 + [[60, 70]] + [[20, 20]]  # left closed 5 steps, right once; then both open
    assert run(latch, rows).tolist() == [90, 20]
    assert latch.latched.tolist() == [True, False]
    assert latch.release() == [0]
    assert latch.apply(np.array([20.0, 20.0]), 0).tolist() == [20, 20]


def test_steps_are_counted_once_however_many_ticks_they_span():
    latch = ClawLatch(ON, claws=2)
    assert run(latch, [[60, 60]] * 4, ticks_per_step=50).tolist() == [60, 60]  # 200 ticks, 4 steps: not yet
    latch = ClawLatch(ON, claws=2)
    assert run(latch, [[60, 60], [40, 60], [60, 60], [60, 60], [60, 60], [60, 60]]).tolist() == [60, 90]  # a dip resets


def test_off_by_default_and_bad_settings_are_named():
    latch = ClawLatch(ClawLatchConfig(), claws=2)
    assert run(latch, [[95, 95]] * 10).tolist() == [95, 95]
    assert ClawLatchConfig(threshold=150, steps=0).problems() == [
        "claw_latch.threshold must be within 0..100 claw units, got 150",
        "claw_latch.steps must be an integer >= 1, got 0"]
