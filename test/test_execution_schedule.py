"""ChunkScheduler: latency compensation, blending at boundaries, ramp, sync/async requests, stalls."""

import numpy as np
import pytest

from groot_ros.execution.config import ExecutionConfig, SafetyConfig
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.execution.schedule import ChunkScheduler
from groot_ros.core.layout import load_layout

TICK = 0.01


@pytest.fixture(scope="module")
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def _scheduler(layout, **kw):
    kw.setdefault("ramp_time", 0.0)
    return ChunkScheduler(layout, ExecutionConfig(**kw))


def _chunk(layout, slope=0.1, offset=0.0):
    """Linear dims move `slope` per row from `offset`; claws alternate 0/100 per row."""
    k = np.arange(layout.chunk_size, dtype=float)[:, None]
    mask = layout.action_interpolation_mask()
    return np.where(mask, offset + slope * k, 100.0 * (k % 2))


def _run(sched, t0, t1):
    """Commands at every tick in [t0, t1)."""
    n = int(round((t1 - t0) / TICK))
    return np.array([sched.command_at(t0 + i * TICK)[0] for i in range(n)])


def test_latency_compensation_skips_exactly_the_elapsed_rows(layout):
    mask = layout.action_interpolation_mask()
    for latency, skipped in ((0.0, 0), (0.05, 1), (0.1, 1), (0.25, 3), (0.35, 4), (1.2, 12)):
        sched = _scheduler(layout, blend="none")
        sched.reset(np.zeros(layout.action_dim), 0.0)
        result = sched.submit(_chunk(layout), observation_time=1.0, now=1.0 + latency)
        assert result.accepted and result.skipped_rows == skipped
        cmd, info = sched.command_at(1.0 + latency)
        expected_row = latency / 0.1
        np.testing.assert_allclose(cmd[mask], 0.1 * expected_row)
        assert cmd[~mask][0] == 100.0 * (int(expected_row + 1e-9) % 2)
        assert info.source == "chunk"
    assert sched.stats.rows_skipped == 12


def test_chunk_that_fully_elapsed_is_rejected_and_counted(layout):
    sched = _scheduler(layout)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    result = sched.submit(_chunk(layout), observation_time=0.0, now=1.6)
    assert not result.accepted and result.reason.startswith("late")
    assert sched.stats.rejected == {"late": 1}
    assert sched.command_at(1.6)[1].source == "waiting"


def test_bad_chunks_are_rejected_or_raise(layout):
    sched = _scheduler(layout)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    nan_chunk = _chunk(layout)
    nan_chunk[4, 2] = np.nan
    assert sched.submit(nan_chunk, 0.0, 0.0).reason == "non-finite values: rows [4]"
    assert not sched.submit(_chunk(layout), observation_time=-0.5, now=0.0).accepted  # before reset
    with pytest.raises(ValueError, match=r"shape \(16, 18\)"):
        sched.submit(np.zeros((16, 17)), 0.0, 0.0)
    with pytest.raises(ValueError, match="finite measured pose"):
        sched.reset(np.full(layout.action_dim, np.nan), 0.0)
    assert sched.stats.rejected == {"non-finite values": 1, "observation taken before the last reset": 1}


def test_command_before_reset_is_an_error(layout):
    with pytest.raises(RuntimeError, match="reset"):
        _scheduler(layout).command_at(0.0)


def test_first_chunk_ramps_from_the_measured_pose(layout):
    mask = layout.action_interpolation_mask()
    measured = np.where(mask, -0.4, 30.0)
    target = np.where(mask, 0.6, 100.0)
    sched = _scheduler(layout, ramp_time=0.2)
    sched.reset(measured, 0.0)
    np.testing.assert_array_equal(sched.command_at(0.05)[0], measured)  # waiting: hold the pose
    sched.submit(np.tile(target, (layout.chunk_size, 1)), 0.1, 0.1)
    first, info = sched.command_at(0.1)
    assert info.source == "ramp"
    np.testing.assert_allclose(first[mask], -0.4)
    assert (first[~mask] == 100.0).all()  # claws are commands, not interpolated
    np.testing.assert_allclose(sched.command_at(0.2)[0][mask], 0.1)  # half-way
    cmds = _run(sched, 0.2, 0.4)
    assert np.abs(np.diff(cmds[:, mask], axis=0)).max() <= 1.0 / 20 + 1e-9
    np.testing.assert_allclose(sched.command_at(0.3)[0], target)
    assert sched.command_at(0.31)[1].source == "chunk"


GAP = 0.1


def _two_chunks(layout, blend):
    """Chunk A (linear dims at 0.1 * t) from t=0, then at t=0.5 chunk B observed at 0.4: 0.1 * t + GAP."""
    sched = _scheduler(layout, blend=blend)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    sched.submit(_chunk(layout, 0.01), 0.0, 0.0)
    before = _run(sched, 0.0, 0.5)
    sched.submit(_chunk(layout, 0.01, offset=GAP + 0.04), 0.4, 0.5)
    return sched, before


@pytest.mark.parametrize("blend, bound", [("crossfade", GAP / 10 + 0.001), ("lowpass", GAP * 0.16 + 0.001)])
def test_blend_bounds_the_step_at_a_boundary(layout, blend, bound):
    mask = layout.action_interpolation_mask()
    sched, before = _two_chunks(layout, blend)
    cmds = np.vstack([before, _run(sched, 0.5, 1.0)])
    steps = np.abs(np.diff(cmds[:, mask], axis=0))
    assert 0.0011 < steps.max() <= bound + 1e-12  # more than one tick of motion: the boundary did happen
    np.testing.assert_allclose(cmds[-1, mask], 0.1 * 0.99 + GAP, atol=1e-12)  # ends exactly on chunk B


def test_blend_none_switches_at_once_and_safety_bounds_it(layout):
    mask = layout.action_interpolation_mask()
    sched, before = _two_chunks(layout, "none")
    cmds = np.vstack([before, _run(sched, 0.5, 1.0)])
    steps = np.abs(np.diff(cmds[:, mask], axis=0))
    assert steps.max() == pytest.approx(GAP + 0.001)
    safety = SafetyEnvelope(layout, SafetyConfig(max_joint_velocity=1.0, torso_max_z_rate=1.0,
                                                 torso_max_pitch_rate=1.0), 100.0)
    safety.reset(cmds[0])
    safe = np.array([safety.apply(c) for c in cmds])
    assert np.abs(np.diff(safe[:, mask], axis=0)).max() <= 0.01 + 1e-12


@pytest.mark.parametrize("blend, ticks", [("crossfade", 10), ("lowpass", 20)])
def test_blends_last_their_configured_ticks(layout, blend, ticks):
    sched, _ = _two_chunks(layout, blend)
    assert sched.command_at(0.5 + (ticks - 1) * TICK)[1].source == blend
    assert sched.command_at(0.5 + ticks * TICK)[1].source == "chunk"


def test_async_requests_inference_below_the_threshold_and_not_while_pending(layout):
    sched = _scheduler(layout, mode="async", inference_threshold_s=0.5)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    assert sched.wants_inference(0.0)
    sched.inference_started(0.0)
    assert not sched.wants_inference(0.0)
    result = sched.submit(_chunk(layout), 0.0, 0.08)
    assert result.latency_s == pytest.approx(0.08)
    assert not sched.wants_inference(1.1)  # 0.5 s left
    assert sched.wants_inference(1.11)


def test_sync_mode_executes_k_rows_from_arrival_then_requests(layout):
    mask = layout.action_interpolation_mask()
    sched = _scheduler(layout, mode="sync", sync_execute_steps=4, blend="none")
    sched.reset(np.zeros(layout.action_dim), 0.0)
    assert sched.wants_inference(0.0)
    sched.inference_started(0.0)
    result = sched.submit(_chunk(layout), observation_time=0.0, now=0.13)
    assert result.skipped_rows == 0  # the robot waited: nothing elapsed
    np.testing.assert_allclose(sched.command_at(0.13)[0][mask], 0.0)  # row 0 at arrival
    for t in np.arange(0.13, 0.53 - 1e-9, TICK):
        sched.command_at(t)
        assert not sched.wants_inference(t)
    assert sched.wants_inference(0.53)  # 4 rows = 0.4 s executed
    cmd, info = sched.command_at(0.53)
    assert info.source == "stall"
    np.testing.assert_allclose(cmd[mask], 0.3)  # row 3 held
    assert sched.stats.stall_ticks == 1


def test_chunk_running_out_holds_the_last_command_and_counts_stalls(layout):
    sched = _scheduler(layout, blend="none")
    sched.reset(np.zeros(layout.action_dim), 0.0)
    sched.submit(_chunk(layout), 0.0, 0.0)
    cmds = _run(sched, 0.0, 2.0)
    assert sched.stats.stall_ticks == 40
    np.testing.assert_array_equal(cmds[160:], np.tile(_chunk(layout)[-1], (40, 1)))
    assert sched.command_at(2.0)[1].source == "stall"


@pytest.mark.parametrize("rows", [(2, 10, 1), (0, 16, 4)])
def test_window_and_stride_are_applied(layout, rows):
    start, end, stride = rows
    mask = layout.action_interpolation_mask()
    sched = _scheduler(layout, blend="none", chunk_start=start, chunk_end=end, stride=stride)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    sched.submit(_chunk(layout), 0.0, 0.0)
    last_row = list(range(start, end, stride))[-1]
    assert sched.command_at(0.0)[0][mask][0] == pytest.approx(0.1 * start)
    end_time = (last_row + stride) * 0.1
    assert sched.command_at(end_time - TICK)[1].source == "chunk"
    cmd, info = sched.command_at(end_time)
    assert info.source == "stall" and cmd[mask][0] == pytest.approx(0.1 * last_row)


# -- blend rtc: the plan under way as the next chunk's prefix ------------------------------------------------------

def _rtc_scheduler(layout, **rtc):
    from groot_ros.execution.config import RtcConfig

    return ChunkScheduler(layout, ExecutionConfig(ramp_time=0.0, blend="rtc"), RtcConfig(**rtc))


def test_rtc_prefix_is_the_plan_at_the_new_rows_with_the_measured_delay(layout):
    sched = _rtc_scheduler(layout, initial_delay_s=0.15, prefix_rows=16, delay_percentile=100)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    assert sched.prefix_for(0.0) is None  # nothing under way yet
    chunk = _chunk(layout)
    sched.inference_started(0.0)
    assert sched.submit(chunk, observation_time=0.0, now=0.12).accepted
    sched.inference_started(0.95)
    prefix = sched.prefix_for(0.95)
    assert prefix.delay_steps == 2  # the first delay (0.12 s measured), in 0.1 s steps, rounded up
    assert prefix.actions.shape == (7, layout.action_dim)  # rows at 0.95 .. 1.55: the plan ends at 1.6
    mask = layout.action_interpolation_mask()
    planned = np.minimum(0.1 * (9.5 + np.arange(7)), 1.5)  # the last row (1.5 s) holds to the plan's end
    np.testing.assert_allclose(prefix.actions[:, mask], np.broadcast_to(planned[:, None], (7, mask.sum())), rtol=1e-6)
    assert sched.stats.prefixes == 1
    short = _rtc_scheduler(layout, prefix_rows=3)
    short.reset(np.zeros(layout.action_dim), 0.0)
    short.submit(chunk, observation_time=0.0, now=0.3)
    short_prefix = short.prefix_for(0.4)  # measured delay 0.3 s: 3 steps, all 3 rows frozen
    assert short_prefix.actions.shape[0] == 3 and short_prefix.delay_steps == 3


def test_rtc_chunk_that_keeps_the_prefix_takes_over_without_a_jump_and_one_without_is_crossfaded(layout):
    mask = layout.action_interpolation_mask()
    sched = _rtc_scheduler(layout)
    sched.reset(np.zeros(layout.action_dim), 0.0)
    sched.submit(_chunk(layout), observation_time=0.0, now=0.1)
    commands = list(_run(sched, 0.1, 0.9))
    sched.inference_started(0.9)
    prefix = sched.prefix_for(0.9)
    new = _chunk(layout, slope=0.3, offset=0.0)  # a different plan after the frozen rows
    new[: prefix.delay_steps] = prefix.actions[: prefix.delay_steps]
    new[prefix.delay_steps:, mask] = prefix.actions[prefix.delay_steps - 1, mask] + 0.1 * np.arange(
        1, len(new) - prefix.delay_steps + 1)[:, None]
    commands += list(_run(sched, 0.9, 1.05))
    result = sched.submit(new, observation_time=0.9, now=1.05)
    command, info = sched.command_at(1.05)
    assert result.accepted and info.source == "rtc"  # it continues the plan: a residual fade at most
    commands += [command] + list(_run(sched, 1.06, 1.5))
    steps = np.abs(np.diff(np.asarray(commands)[:, mask], axis=0)).max()
    assert steps <= 0.1 * TICK / 0.1 + 1e-9  # never more than the plan's own per-tick motion
    # The policy could not use a prefix (none handed): cross-faded as with blend crossfade.
    sched.inference_started(1.5)
    sched.submit(_chunk(layout, offset=5.0), observation_time=1.5, now=1.6)
    assert sched.command_at(1.61)[1].source == "crossfade"


def test_rtc_needs_async_mode():
    from groot_ros.execution.config import ExecutionConfigError

    with pytest.raises(ExecutionConfigError, match="blend rtc needs mode async"):
        ExecutionConfig(blend="rtc", mode="sync")
