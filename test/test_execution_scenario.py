"""20 s at 100 Hz in simulated time with a 60-150 ms inference latency: async never stalls, sync does."""

import numpy as np
import pytest

from groot_ros.bench.execution import run_execution_benchmark, simulate
from groot_ros.execution.config import ExecutionConfig, ExecutionSettings
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.core.layout import load_layout


@pytest.fixture(scope="module")
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def _settings(**execution):
    return ExecutionSettings(execution=ExecutionConfig(**execution))


@pytest.mark.parametrize("blend", ["none", "crossfade", "lowpass"])
def test_async_never_stalls_and_stays_inside_the_envelope(layout, blend):
    settings = _settings(mode="async", blend=blend)
    res = simulate(layout, settings, duration_s=20.0, latency_s=(0.06, 0.15), seed=3)
    assert res.stall_ticks == 0
    assert res.chunks >= 20
    assert res.report["scheduler"]["rows_skipped"] >= res.chunks  # latency compensation at every boundary
    max_step = SafetyEnvelope(layout, settings.safety, 100.0).max_step
    assert (res.max_step <= max_step + 1e-12).all()


def test_blending_shrinks_the_boundary_steps(layout):
    arm = np.array([c.channel == "arm" for c in layout.action for _ in range(c.dim)])
    step = {blend: simulate(layout, _settings(blend=blend), duration_s=20.0, seed=3).max_raw_step[arm].max()
            for blend in ("none", "crossfade", "lowpass")}
    assert step["crossfade"] < 0.6 * step["none"] and step["lowpass"] < 0.6 * step["none"], step


def test_sync_stalls_for_each_inference(layout):
    res = simulate(layout, _settings(mode="sync", sync_execute_steps=8), duration_s=20.0,
                   latency_s=(0.06, 0.15), seed=3)
    boundaries = res.chunks - 1
    assert 6 * boundaries <= res.stall_ticks <= 15 * (boundaries + 1)
    assert res.stall_time_s == pytest.approx(res.stall_ticks * 0.01)


def test_async_with_latency_beyond_the_threshold_stalls_and_counts(layout):
    res = simulate(layout, _settings(mode="async", inference_threshold_s=0.1), duration_s=10.0,
                   latency_s=(0.2, 0.3), seed=3)
    assert res.stall_ticks > 0


def test_benchmark_reports_both_modes():
    out = run_execution_benchmark(duration_s=2.0)
    for mode in ("async", "sync"):
        assert {"stall_ticks", "stall_time_s", "stall_per_boundary_ms", "max_raw_step_arm_rad", "max_step_arm_rad",
                "tick_cost_us_p50", "tick_cost_us_p99", "safety_summary"} <= set(out[mode])
    assert out["async"]["stall_ticks"] == 0 < out["sync"]["stall_ticks"]
