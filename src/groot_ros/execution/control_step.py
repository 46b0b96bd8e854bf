"""The per-tick sequence of the policy node, in one place: watchdog, then scheduler, then safety.

The ROS node only feeds it time, the measured pose (in action space) and input health, and publishes
what comes out; the benchmark and tests drive the very same object in simulated time. Holds are the node's
StateMachine's (passed in; a core made without one drives its own, already running): the watchdog's problems
put it in holding, and an automatic or operator resume takes it out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from groot_ros.core.prefix import ChunkPrefix
from groot_ros.execution.claw_latch import ClawLatch
from groot_ros.execution.config import ExecutionSettings
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.execution.schedule import ChunkScheduler, SubmitResult
from groot_ros.execution.state_machine import HOLDING, RUNNING, StateMachine, Transition
from groot_ros.execution.watchdog import Watchdog, slowest_inference
from groot_ros.core.layout import Layout

# A clock reading this much before the previous tick's is a jump back (not rounding or sim-time steps).
CLOCK_JUMP_S = 1e-3

# Tick.state before the first valid measured pose: not one of the state machine's states (its STARTING is the
# start-up sequence), the step has nothing to command yet.
NO_POSE = "no_pose"


@dataclass(frozen=True)
class Tick:
    command: np.ndarray | None  # action vector to publish; None only before the first valid measured pose
    raw: np.ndarray | None  # what the scheduler asked for before the safety envelope (diagnostics)
    state: str  # no_pose (no valid pose yet) | running | holding | paused (the state machine's)
    source: str  # scheduler source (waiting, ramp, crossfade, lowpass, chunk, stall) or hold
    reasons: tuple[str, ...]  # why holding or paused / not started
    chunk_id: int


class ControlStep:
    """Never blocks: `tick` always returns at once with a safe command (or None before start-up)."""

    def __init__(self, layout: Layout, settings: ExecutionSettings = ExecutionSettings(),
                 machine: StateMachine | None = None, latch: ClawLatch | None = None):
        self.layout = layout
        self.latch = latch  # the episode's claw latch (the runner's; it outlives a core across hand-backs)
        self._claws = layout.action_indices("claw")
        self.settings = settings
        self.scheduler = ChunkScheduler(layout, settings.execution, settings.rtc)
        self.safety = SafetyEnvelope(layout, settings.safety, settings.execution.control_rate)
        self.watchdog = Watchdog(settings.watchdog)
        self.machine = machine if machine is not None else StateMachine(RUNNING)
        self.hold_ticks = 0
        self._started = False
        self._in_hold = False
        self._last_now: float | None = None
        self._no_chunk_since: float | None = None  # running without a chunk to execute since (waiting or stall)
        self._refusal = ""  # why the last chunk was not executed ("" once one was)
        cfg, scheduler = settings.execution, self.scheduler
        # async: rows are placed from the observation time, so a chunk whose inference took this long is all past
        self.horizon_s = (cfg.time_offset_s + (scheduler.rows[-1] + scheduler.rows.step) * scheduler.step_dt
                          if cfg.mode == "async" else None)

    def _valid_pose(self, measured: np.ndarray | None) -> np.ndarray | None:
        if measured is None:
            return None
        pose = np.asarray(measured, dtype=np.float64)
        return pose if pose.shape == (self.layout.action_dim,) and np.isfinite(pose).all() else None

    def tick(self, now: float, measured: np.ndarray | None = None, sensor_problems: Sequence[str] = (),
             worker_alive: bool = True) -> Tick:
        """One control tick. measured: the current pose in action space (needed at start and on resume)."""
        pose = self._valid_pose(measured)
        if not self._started:
            if pose is None:
                return Tick(None, None, NO_POSE, "waiting", ("no valid measured pose yet",), 0)
            self.safety.reset(pose)
            self.scheduler.reset(pose, now)
            self._started = True
        problems = list(sensor_problems)
        jump = self._clock_jump(now)
        if jump:
            problems.append(jump)
        if measured is not None and pose is None:
            problems.append(f"measured pose invalid (non-finite or not {self.layout.action_dim} values)")
        stalled = self._stall_problem(now)
        if stalled:
            problems.append(stalled)
        latency = slowest_inference(self.scheduler.stats.last_latency_s, self.scheduler.pending_since, now)
        health = self.watchdog.update(now, problems, latency, worker_alive, self.horizon_s)
        machine = self.machine
        if not health.ok:
            machine.hold(health.problems)
        elif machine.state == HOLDING and self.watchdog.auto_resume_due(health):
            machine.resume()
        state = machine.state
        if state != RUNNING:  # holding, paused (or leaving: stopping) -> the last safe command, no chunks
            if not self._in_hold:  # stop consuming chunks; anything computed before now is stale
                self.scheduler.reset(self.safety.last, now)
                self._in_hold = True
                self._no_chunk_since = None
            self.hold_ticks += 1
            held = self.safety.last
            return Tick(self.safety.apply(held), held, state, "hold", machine.reasons, 0)
        if self._in_hold:  # resumed: ramp the next chunk from where the robot is
            self.scheduler.reset(pose if pose is not None else self.safety.last, now)
            self._in_hold = False
        raw, info = self.scheduler.command_at(now)
        if self.latch is not None and self._claws:
            raw = raw.copy()
            raw[self._claws] = self.latch.apply(raw[self._claws], now)
        if info.source in ("waiting", "stall"):
            self._no_chunk_since = now if self._no_chunk_since is None else self._no_chunk_since
        else:
            self._no_chunk_since = None
        return Tick(self.safety.apply(raw), raw, state, info.source, (), info.chunk_id)

    def _clock_jump(self, now: float) -> str:
        """A clock that went backwards: the chunks, the pending inference and the watchdog's clock are on the old
        time base (a chunk would be replayed from the past, staleness would read negative): reset them."""
        last, self._last_now = self._last_now, now
        if last is None or now >= last - CLOCK_JUMP_S:
            return ""
        self.scheduler.reset(self.safety.last, now)
        self.abandon_inference(now, "the clock jumped back")
        self.watchdog.restart_clock()
        self._no_chunk_since = None
        return f"clock jumped back {last - now:.2f} s (chunks dropped, time base reset)"

    def _stall_problem(self, now: float) -> str:
        limit = self.settings.watchdog.max_stall_s
        if self._no_chunk_since is None or now - self._no_chunk_since <= limit:
            return ""
        why = f"every chunk refused, last: {self._refusal}" if self._refusal else "the model returned no chunk"
        return f"no chunk executed for {now - self._no_chunk_since:.1f} s (limit {limit:g} s): {why}"

    @property
    def holding_on_latency(self) -> bool:
        """The watchdog holds on inference latency: only a new inference can clear it (the worker keeps running
        the model while held, its chunks refused)."""
        return bool(self.watchdog.latency_problem)

    # -- inference side: called by the node's worker ---------------------------------------------------

    def wants_inference(self, now: float) -> bool:
        return self._started and self.scheduler.wants_inference(now)

    def inference_started(self, now: float) -> None:
        self.scheduler.inference_started(now)

    def prefix_for(self, observation_time: float) -> ChunkPrefix | None:
        """blend rtc: what the policy must continue (execution/schedule.py ChunkScheduler.prefix_for); else None."""
        return self.scheduler.prefix_for(observation_time)

    def submit(self, chunk: np.ndarray, observation_time: float, now: float) -> SubmitResult:
        if self.machine.state != RUNNING:
            return self.scheduler.reject(now, f"{self.machine.state}: {self.machine.reason()}")
        if observation_time > now + CLOCK_JUMP_S:
            result = self.scheduler.reject(now, f"observation stamped {observation_time - now:.2f} s after its "
                                                "chunk returned (the clock jumped back)")
        else:
            result = self.scheduler.submit(chunk, observation_time, now)
        self._refusal = "" if result.accepted else result.reason
        return result

    def inference_failed(self, now: float, error: str) -> SubmitResult:
        """A model call that raised holds with the error (a failure must not look like running while the last
        chunk runs out); ~resume (or auto-resume) lets the worker try again."""
        result = self.scheduler.reject(now, f"inference failed: {error}")
        self._refusal = f"inference failed: {error}"
        self.machine.hold([f"inference failed: {error}"])
        return result

    def abandon_inference(self, now: float, why: str) -> None:
        """The pending inference will never report (its worker died): end it, so a new worker can start one."""
        if self.scheduler.pending_since is not None:
            self.scheduler.reject(now, why)

    # -- operator ----------------------------------------------------------------------------------------

    def pause(self, reason: str = "paused by operator") -> Transition:
        return self.machine.pause(reason)

    def resume(self, now: float | None = None, sensor_problems: Sequence[str] = (),
               worker_alive: bool = True) -> Transition:
        """Operator resume, refused while an input is unhealthy: judged now when `now` is given (the node), else
        as of the last tick."""
        if now is not None:
            latency = slowest_inference(self.scheduler.stats.last_latency_s, self.scheduler.pending_since, now)
            self.watchdog.update(now, sensor_problems, latency, worker_alive, self.horizon_s)
        return self.machine.resume(self.watchdog.problems)

    @property
    def started(self) -> bool:
        """A valid measured pose has been seen (commands flow from here on)."""
        return self._started

    def report(self) -> dict:
        """Counters for logs and the benchmark; `safety_summary` is the line a person reads."""
        stats = self.scheduler.stats
        return {
            "scheduler": dataclasses.asdict(stats),
            "stall_time_s": stats.stall_ticks * self.settings.execution.tick_dt,
            "hold_ticks": self.hold_ticks,
            "state": {"state": self.machine.state, "reasons": list(self.machine.reasons),
                      "trips": self.machine.trips, "problems": list(self.watchdog.problems)},
            "safety": self.safety.clamp_counts(),
            "safety_summary": self.safety.summary(),
        }
