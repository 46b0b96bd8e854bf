"""The control step in simulated time: a fake policy with a latency model drives ControlStep at the
control rate, so boundary stalls, command jumps and per-tick cost can be measured without a robot or GPU.

The fake policy moves from the observed pose along a smooth reference motion (so it behaves like a
closed-loop policy in both modes) and adds a per-chunk bias (two model calls never agree exactly), so
chunk boundaries have real steps for the blending to hide. The robot tracks perfectly: the measured pose
is the last command.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from groot_ros.execution.config import ExecutionSettings
from groot_ros.execution.control_step import ControlStep
from groot_ros.execution.safety import dimension_limits
from groot_ros.core.layout import Layout, load_layout


@dataclass(frozen=True)
class ReferenceMotion:
    """Sines for linear dims (at half the rate limit), open/close toggles for hold dims (claws)."""

    center: np.ndarray = field(compare=False)
    amplitude: np.ndarray = field(compare=False)
    omega: np.ndarray = field(compare=False)
    phase: np.ndarray = field(compare=False)
    linear: np.ndarray = field(compare=False)
    low: np.ndarray = field(compare=False)
    high: np.ndarray = field(compare=False)
    toggle_s: float = 2.5

    @classmethod
    def for_layout(cls, layout: Layout, settings: ExecutionSettings) -> "ReferenceMotion":
        rate = settings.execution.control_rate
        limits = dimension_limits(layout, settings.safety, 1.0 / rate)
        low = np.array([d.lower for d in limits])
        high = np.array([d.upper for d in limits])
        speed = np.array([d.max_step for d in limits]) * rate
        omega = np.full(len(limits), 2 * np.pi * 0.2)
        amplitude = np.minimum(0.15 * (high - low), np.where(np.isfinite(speed), 0.5 * speed / omega, np.inf))
        return cls(center=(low + high) / 2, amplitude=amplitude, omega=omega,
                   phase=np.linspace(0, np.pi, len(limits)), linear=layout.action_interpolation_mask(),
                   low=low, high=high)

    def chunk(self, pose: np.ndarray, t_obs: float, row_times: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """What the fake policy returns for an observation of `pose` at t_obs: (rows, D)."""
        ahead = self.at(t_obs + row_times)
        return np.where(self.linear, pose + ahead - self.at(t_obs) + bias, ahead)

    def at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[..., None]
        smooth = self.center + self.amplitude * np.sin(self.omega * t + self.phase)
        closed = (np.floor(t / self.toggle_s) % 2) == 1
        return np.where(self.linear, smooth, np.where(closed, self.high, self.low))


@dataclass
class SimResult:
    mode: str
    ticks: int
    stall_ticks: int
    stall_time_s: float
    chunks: int
    inferences: int
    max_raw_step: np.ndarray  # (D,) largest tick-to-tick change the scheduler asked for, after start-up
    max_step: np.ndarray  # (D,) largest tick-to-tick change sent, after start-up
    tick_cost_s: np.ndarray  # per-tick wall time of ControlStep.tick (only when timed)
    report: dict


def simulate(layout: Layout, settings: ExecutionSettings, duration_s: float = 20.0,
             latency_s: tuple[float, float] = (0.06, 0.15), seed: int = 0, chunk_bias: float = 0.03,
             start_offset: float = 0.05, timed: bool = False) -> SimResult:
    """Runs the control step for duration_s of simulated time; inference latency is uniform in latency_s and each
    chunk is offset by a random bias of `chunk_bias` times the motion amplitude."""
    rng = np.random.default_rng(seed)
    cfg = settings.execution
    step = ControlStep(layout, settings)
    motion = ReferenceMotion.for_layout(layout, settings)
    step_dt = cfg.model_action_dt or layout.model_action_dt
    rows = np.arange(layout.chunk_size) * step_dt
    measured = np.clip(motion.at(0.0) + np.where(motion.linear, start_offset, 0.0), motion.low, motion.high)
    pending: tuple[float, float, np.ndarray] | None = None  # (ready time, observation time, chunk)
    n = int(round(duration_s * cfg.control_rate))
    raw = np.zeros((n, layout.action_dim))
    sent = np.zeros((n, layout.action_dim))
    cost = np.zeros(n if timed else 0)
    for i in range(n):
        now = i * cfg.tick_dt
        if pending is not None and now >= pending[0]:
            step.submit(pending[2], pending[1], now)
            pending = None
        if step.wants_inference(now):
            step.inference_started(now)
            bias = rng.normal(0.0, chunk_bias, layout.action_dim) * motion.amplitude
            pending = (now + rng.uniform(*latency_s), now, motion.chunk(measured, now, rows, bias))
        start = time.perf_counter() if timed else 0.0
        tick = step.tick(now, measured)
        if timed:
            cost[i] = time.perf_counter() - start
        raw[i], sent[i] = tick.raw, tick.command
        measured = tick.command
    settle = int(round((cfg.ramp_time + latency_s[1]) * cfg.control_rate)) + 1  # skip start-up ramp
    report = step.report()
    stats = step.scheduler.stats
    return SimResult(
        mode=cfg.mode, ticks=n, stall_ticks=stats.stall_ticks, stall_time_s=report["stall_time_s"],
        chunks=stats.chunks_accepted, inferences=stats.inference_requests,
        max_raw_step=np.abs(np.diff(raw[settle:], axis=0)).max(axis=0),
        max_step=np.abs(np.diff(sent[settle:], axis=0)).max(axis=0), tick_cost_s=cost, report=report)


def run_execution_benchmark(duration_s: float = 20.0, latency_s: tuple[float, float] = (0.06, 0.15),
                            seed: int = 0, layout: str = "depalletize", robot: str = "4_pro",
                            settings: ExecutionSettings | None = None) -> dict:
    """Async vs sync in simulated time: stalls at chunk boundaries, largest arm command step per tick
    before (raw) and after the safety envelope, and the real per-tick cost of ControlStep.tick
    (watchdog + scheduler + safety) on this CPU."""
    spec = load_layout(layout, robot, "sim")
    base = settings or ExecutionSettings()
    arm = np.concatenate([np.full(c.dim, c.channel == "arm") for c in spec.action])
    out: dict = {"duration_s": duration_s, "latency_s": list(latency_s), "layout": spec.name,
                 "control_rate": base.execution.control_rate}
    for mode in ("async", "sync"):
        cfg = dataclasses.replace(base, execution=dataclasses.replace(base.execution, mode=mode))
        res = simulate(spec, cfg, duration_s, latency_s, seed, timed=True)
        cost_us = res.tick_cost_s * 1e6
        out[mode] = {
            "stall_ticks": res.stall_ticks,
            "stall_time_s": round(res.stall_time_s, 4),
            "chunks": res.chunks,
            "stall_per_boundary_ms": round(1e3 * res.stall_time_s / max(res.chunks - 1, 1), 2),
            "max_raw_step_arm_rad": round(float(res.max_raw_step[arm].max()), 5),
            "max_step_arm_rad": round(float(res.max_step[arm].max()), 5),
            "tick_cost_us_p50": round(float(np.percentile(cost_us, 50)), 1),
            "tick_cost_us_p99": round(float(np.percentile(cost_us, 99)), 1),
            "safety_summary": res.report["safety_summary"],
        }
    return out
