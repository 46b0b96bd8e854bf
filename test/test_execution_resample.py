"""Chunk -> trajectory in absolute time: exact rows, interpolation, claw hold, window and stride."""

import numpy as np
import pytest

from groot_ros.execution.resample import chunk_trajectory

DT = 0.1
MASK = np.array([True, True, False])  # two linear dims, one hold dim (a claw)


def _chunk(rows=16):
    k = np.arange(rows, dtype=float)
    return np.stack([k, -2.0 * k, 10.0 * (k % 2)], axis=1)


def test_exact_row_times_give_the_rows():
    traj = chunk_trajectory(_chunk(), 5.0, DT, MASK, range(16))
    for k in range(16):
        np.testing.assert_array_equal(traj.sample(5.0 + k * DT), _chunk()[k])


def test_between_rows_linear_dims_interpolate_and_hold_dims_keep_the_earlier_row():
    traj = chunk_trajectory(_chunk(), 5.0, DT, MASK, range(16))
    value = traj.sample(5.0 + 2.25 * DT)
    np.testing.assert_allclose(value[:2], [2.25, -4.5])
    assert value[2] == 0.0  # row 2 is 0, row 3 is 10: a claw never sees 2.5
    assert traj.sample(5.0 + 3.99 * DT)[2] == 10.0


def test_vectorised_sampling_matches_scalar_and_clamps_outside():
    traj = chunk_trajectory(_chunk(), 0.0, DT, MASK, range(16))
    ts = np.array([-1.0, 0.0, 0.037, 0.55, 1.5, 1.55, 9.0])
    batch = traj.sample(ts)
    assert batch.shape == (len(ts), 3)
    for t, row in zip(ts, batch):
        np.testing.assert_allclose(row, traj.sample(t))
    np.testing.assert_array_equal(batch[0], _chunk()[0])
    np.testing.assert_array_equal(batch[-1], _chunk()[-1])
    assert traj.end_time == pytest.approx(1.6)  # the last row owns one step


def test_window_and_stride_keep_row_times():
    traj = chunk_trajectory(_chunk(), 0.0, DT, MASK, range(2, 12, 3))  # rows 2, 5, 8, 11
    np.testing.assert_allclose(traj.times, [0.2, 0.5, 0.8, 1.1])
    np.testing.assert_array_equal(traj.sample(0.5), _chunk()[5])
    np.testing.assert_allclose(traj.sample(0.6)[:2], [6.0, -12.0])  # linear between rows 5 and 8
    assert traj.sample(0.6)[2] == _chunk()[5][2]
    assert traj.step_dt == pytest.approx(0.3)
    assert traj.end_time == pytest.approx(1.4)
    np.testing.assert_array_equal(traj.sample(0.0), _chunk()[2])  # before the window: its first row


def test_rows_before_counts_rows_strictly_in_the_past():
    traj = chunk_trajectory(_chunk(), 1.0, DT, MASK, range(16))
    assert [traj.rows_before(1.0 + x) for x in (-0.5, 0.0, 0.05, 0.1, 0.25, 1.55)] == [0, 0, 1, 1, 3, 16]


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="chunk must be"):
        chunk_trajectory(np.zeros((16, 4)), 0.0, DT, MASK, range(16))
    with pytest.raises(ValueError, match="has no rows"):
        chunk_trajectory(_chunk(8), 0.0, DT, MASK, range(16))
