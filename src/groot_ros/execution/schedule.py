"""Turns asynchronously arriving model chunks into one command per control tick, without ever waiting.

Chunks live in absolute time: in async mode row 0 is the time the chunk's observation was taken, so
the rows that elapsed while the model ran are skipped (latency compensation). In sync mode the robot
stood still during inference, so row 0 is the time the chunk arrived. A new chunk takes over at once
but is blended with what was being commanded, so a boundary is never a jump; when no chunk covers
`now`, the last command is held and the tick counted as a stall.

With `blend: rtc` (real-time chunking) the chunk is not blended: the scheduler hands the policy the plan under
way as a prefix (`prefix_for`, at the new observation's time, at the model's step) with the rows that will run
before the chunk can take over (from the measured latency), and the policy returns a chunk that keeps those rows
and continues from them; what is left between the two at the takeover (the guided rows are close to the plan,
not equal) is cross-faded over `crossfade_ticks`. A chunk computed without a prefix (the plan ran out, before
the first chunk) is cross-faded as with blend crossfade.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.execution.config import ExecutionConfig, RtcConfig
from groot_ros.execution.resample import Trajectory, chunk_trajectory


class _Source(Protocol):
    def sample(self, t: float) -> np.ndarray: ...


@dataclass(frozen=True)
class _Hold:
    value: np.ndarray = field(compare=False)

    def sample(self, t: float) -> np.ndarray:
        return self.value


@dataclass(frozen=True)
class _Blend:
    """new(t) + w(t - t0) * gap on linear dims, w falling from 1 to 0 over `duration`.

    Cross-fade: gap = old(t) - new(t), both chunks keep moving. Low-pass: gap frozen at the switch, so
    only the step decays, with no lag on the new motion. Hold dims (claws) take the new value at once.
    """

    new: Trajectory
    old: _Source | None
    gap: np.ndarray | None = field(compare=False)
    t0: float
    duration: float
    alpha: float | None  # None: linear weight (cross-fade); else exponential, tail removed to end at 0
    control_rate: float
    kind: str

    def weight(self, t: float) -> float:
        s = (t - self.t0) / self.duration
        if s >= 1.0 - 1e-9:  # tick times carry rounding; the blend must end on its last tick
            return 0.0
        s = max(s, 0.0)
        if self.alpha is None:
            return 1.0 - s
        n = self.duration * self.control_rate
        tail = self.alpha ** n
        return (self.alpha ** (s * n) - tail) / (1.0 - tail)

    def sample(self, t: float) -> np.ndarray:
        x = self.new.sample(t)
        w = self.weight(t)
        if w == 0.0:
            return x
        gap = self.gap if self.gap is not None else self.old.sample(t) - x
        return np.where(self.new.linear_mask, x + w * gap, x)


@dataclass(frozen=True)
class TickInfo:
    source: str  # waiting (no chunk since reset) | ramp | crossfade | lowpass | rtc | chunk | stall
    chunk_id: int  # 0 before the first chunk
    remaining_s: float  # horizon left in the active chunk (0 when none)


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    reason: str  # "ok" or why the chunk was dropped
    chunk_id: int
    skipped_rows: int  # rows already in the past when the chunk arrived
    latency_s: float | None  # inference_started -> submit, None if no start was marked


@dataclass
class SchedulerStats:
    ticks: int = 0
    stall_ticks: int = 0  # a chunk ran out before the next arrived: the last command was held
    waiting_ticks: int = 0  # no chunk yet since reset (start-up, after a hold)
    chunks_accepted: int = 0
    rows_skipped: int = 0
    inference_requests: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    last_latency_s: float | None = None
    max_latency_s: float = 0.0
    prefixes: int = 0  # blend rtc: chunks requested with the plan under way as their prefix


class ChunkScheduler:
    """Active chunk + blend state; `command_at` is called every tick, `submit` from the inference worker.

    Both are safe to call from different threads; the lock is held only for a few arithmetic operations.
    """

    def __init__(self, layout: Layout, config: ExecutionConfig, rtc: RtcConfig = RtcConfig()):
        self.config = config
        self.rtc = rtc
        self.dim = layout.action_dim
        self.chunk_size = layout.chunk_size
        self.step_dt = config.model_action_dt or layout.model_action_dt
        self.linear_mask = layout.action_interpolation_mask()
        rows = config.window_rows(layout.chunk_size)
        self.rows = rows[: config.sync_execute_steps] if config.mode == "sync" else rows
        self.stats = SchedulerStats()
        self._lock = threading.Lock()
        self._source: _Source | None = None
        self._end: float | None = None  # end of the active chunk; None: no chunk
        self._chunk_id = 0
        self._ramp_pending = True  # the next chunk is the first since reset: ramp from the measured pose
        self._min_obs_time = -math.inf
        self._last: np.ndarray | None = None
        self._pending_since: float | None = None
        self._pending_prefix = False  # the pending inference was handed a prefix
        self._delays: deque[float] = deque(maxlen=rtc.delay_window)  # observation -> takeover, accepted chunks

    # -- control side ---------------------------------------------------------------------------------

    def reset(self, measured: np.ndarray, now: float) -> None:
        """Drops any chunk and holds `measured`; chunks observed before `now` will be rejected."""
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (self.dim,) or not np.isfinite(measured).all():
            raise ValueError(f"reset needs a finite measured pose of shape ({self.dim},), got {measured!r}")
        with self._lock:
            self._last = measured.copy()
            self._source = _Hold(self._last)
            self._end = None
            self._ramp_pending = True
            self._min_obs_time = now

    def command_at(self, now: float) -> tuple[np.ndarray, TickInfo]:
        with self._lock:
            if self._source is None:
                raise RuntimeError("ChunkScheduler.reset(measured, now) must be called before command_at")
            self.stats.ticks += 1
            if self._end is None:
                self.stats.waiting_ticks += 1
                return self._last.copy(), TickInfo("waiting", self._chunk_id, 0.0)
            if now >= self._end:
                self.stats.stall_ticks += 1
                self._source = _Hold(self._last)
                return self._last.copy(), TickInfo("stall", self._chunk_id, 0.0)
            value = self._source.sample(now)
            source = "chunk"
            if isinstance(self._source, _Blend):
                if self._source.weight(now) == 0.0:
                    self._source = self._source.new  # blend over: drop the old chunk
                else:
                    source = self._source.kind
            self._last = value
            return value.copy(), TickInfo(source, self._chunk_id, self._end - now)

    # -- inference side -------------------------------------------------------------------------------

    def wants_inference(self, now: float) -> bool:
        """True when a new chunk should be computed now and none is being computed."""
        with self._lock:
            if self._pending_since is not None:
                return False
            if self._end is None or now >= self._end:
                return True
            return self.config.mode == "async" and self._end - now < self.config.inference_threshold_s

    def inference_started(self, now: float) -> None:
        with self._lock:
            self._pending_since = now
            self.stats.inference_requests += 1

    def prefix_for(self, observation_time: float) -> ChunkPrefix | None:
        """blend rtc: the plan under way at the new chunk's row times (observation_time + k * step, as long as the
        plan covers them, at most `rtc.prefix_rows`), and how many of those rows run before the new chunk takes
        over: the `delay_percentile` of recent observation-to-takeover delays, in model steps, rounded up. None
        when there is no plan to continue (other blends, before the first chunk, after a reset or a stall)."""
        with self._lock:
            self._pending_prefix = False
            if self.config.blend != "rtc" or self._end is None or self._ramp_pending:
                return None
            row0 = observation_time + self.config.time_offset_s
            times = row0 + np.arange(self.rtc.prefix_rows) * self.step_dt
            times = times[times < self._end - 1e-9]
            if times.size == 0 or isinstance(self._source, _Hold):
                return None
            actions = np.stack([self._source.sample(float(t)) for t in times]).astype(np.float32)
            delay = self.rtc.initial_delay_s if not self._delays else \
                float(np.percentile(np.asarray(self._delays), self.rtc.delay_percentile))
            steps = min(int(math.ceil(delay / self.step_dt - 1e-9)), times.size)
            self._pending_prefix = True
            self.stats.prefixes += 1
            return ChunkPrefix(actions, steps)

    @property
    def pending_since(self) -> float | None:
        return self._pending_since

    def reject(self, now: float, reason: str) -> SubmitResult:
        """Ends the pending inference without using its chunk (failed inference, node holding)."""
        with self._lock:
            return self._rejected(now, reason, 0)

    def submit(self, chunk: np.ndarray, observation_time: float, now: float) -> SubmitResult:
        """Makes a (chunk_size, action_dim) chunk the active one, or says why not. Never blocks on control."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.shape != (self.chunk_size, self.dim):
            raise ValueError(f"chunk must have shape ({self.chunk_size}, {self.dim}) from the layout, got {chunk.shape}")
        bad_rows = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
        row0 = (observation_time if self.config.mode == "async" else now) + self.config.time_offset_s
        traj = chunk_trajectory(chunk, row0, self.step_dt, self.linear_mask, self.rows)
        with self._lock:
            if bad_rows.size:
                return self._rejected(now, f"non-finite values: rows {bad_rows.tolist()}", 0)
            if observation_time < self._min_obs_time:
                return self._rejected(now, "observation taken before the last reset", 0)
            skipped = traj.rows_before(now)
            if now >= traj.end_time:
                return self._rejected(now, f"late: the whole chunk elapsed, {now - observation_time:.3f} s "
                                           f"after its observation", skipped)
            self._source = self._takeover(traj, now)
            self._delays.append(now - observation_time)
            self._end = traj.end_time
            self._ramp_pending = False
            self._chunk_id += 1
            self.stats.chunks_accepted += 1
            self.stats.rows_skipped += skipped
            latency = self._finish_inference(now)
            return SubmitResult(True, "ok", self._chunk_id, skipped, latency)

    # -- internals (lock held) ------------------------------------------------------------------------

    def _takeover(self, traj: Trajectory, now: float) -> _Source:
        cfg = self.config
        rate = cfg.control_rate
        if self._ramp_pending:
            if cfg.ramp_time <= 0:
                return traj
            return _Blend(traj, _Hold(self._last), None, now, cfg.ramp_time, None, rate, "ramp")
        if cfg.blend == "rtc" and self._pending_prefix:  # it continues the plan: only a residual left to fade
            return _Blend(traj, self._source, None, now, cfg.crossfade_ticks / rate, None, rate, "rtc")
        if cfg.blend in ("crossfade", "rtc"):
            return _Blend(traj, self._source, None, now, cfg.crossfade_ticks / rate, None, rate, "crossfade")
        if cfg.blend == "lowpass":
            gap = self._last - traj.sample(now)
            return _Blend(traj, None, gap, now, cfg.lowpass_ticks / rate, cfg.lowpass_alpha, rate, "lowpass")
        return traj

    def _finish_inference(self, now: float) -> float | None:
        latency = None if self._pending_since is None else now - self._pending_since
        self._pending_since = None
        self._pending_prefix = False
        if latency is not None:
            self.stats.last_latency_s = latency
            self.stats.max_latency_s = max(self.stats.max_latency_s, latency)
        return latency

    def _rejected(self, now: float, reason: str, skipped: int) -> SubmitResult:
        key = reason.split(":")[0]
        self.stats.rejected[key] = self.stats.rejected.get(key, 0) + 1
        return SubmitResult(False, reason, self._chunk_id, skipped, self._finish_inference(now))
