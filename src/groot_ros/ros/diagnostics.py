"""/diagnostics through diagnostic_updater, as rqt_robot_monitor expects: one status per input stream (measured
rate and stamp age: FrequencyStatus + TimeStampStatus), the state machine, inference latency, safety clamps,
and warnings (what the node gave up without holding, such as the observation log after a disk error).

The node calls `message(name, stamp)` from its subscriber callbacks and `update(snapshot)` from its status
thread; the updater publishes at its own period (~diagnostic_period, default 1 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import diagnostic_updater
import rospy
from diagnostic_msgs.msg import DiagnosticStatus

from groot_ros.core.layout import Layout
from groot_ros.execution.runner import RunnerStatus

LEVEL_OF_STATE = {"running": DiagnosticStatus.OK, "idle": DiagnosticStatus.OK, "stopped": DiagnosticStatus.OK,
                  "starting": DiagnosticStatus.OK, "stopping": DiagnosticStatus.OK, "paused": DiagnosticStatus.WARN,
                  "holding": DiagnosticStatus.ERROR, "operator": DiagnosticStatus.OK}


@dataclass
class Snapshot:
    """What the node knows at one status tick (taken under its lock, read here without it)."""

    state: str = "idle"
    reason: str = ""
    dry_run: bool = False
    values: Mapping[str, str] = field(default_factory=dict)  # chunks, stalls, latency percentiles, ...
    inference_latency_s: float = 0.0
    max_inference_latency_s: float = 1.0
    clamps: int = 0
    safety_summary: str = ""
    restore_ok: bool | None = None  # the last exit's read-back (None: no exit yet)
    warnings: tuple[str, ...] = ()  # what the node gave up without holding (the observation log)


def snapshot_of(status: RunnerStatus, dry_run: bool, max_inference_latency_s: float) -> Snapshot:
    values = {"chunks": str(status.chunks), "stall_ticks": str(status.stall_ticks), "holds": str(status.holds),
              "control_ticks": str(status.control_ticks), "missed_ticks": str(status.missed_ticks),
              "chunk_age_s": f"{status.chunk_age:.3f}", "input_problems": "; ".join(status.input_problems),
              "worker_error": status.worker_error, **status.latency}
    return Snapshot(state=status.state, reason=status.reason, dry_run=dry_run, values=values,
                    inference_latency_s=status.inference_latency, max_inference_latency_s=max_inference_latency_s,
                    clamps=status.clamps, safety_summary=status.safety_summary, restore_ok=status.restore_ok,
                    warnings=status.warnings)


class NodeDiagnostics:
    def __init__(self, layout: Layout, sources: Mapping[str, tuple[str, str]]):
        self.updater = diagnostic_updater.Updater()
        self.updater.setHardwareID(f"kuavo {layout.robot.version}")
        self.snapshot = Snapshot()
        self._ticks: dict[str, tuple[diagnostic_updater.FrequencyStatus, diagnostic_updater.TimeStampStatus]] = {}
        ages = {**{n: s.max_age for n, s in layout.streams.items()}, **{c.name: c.max_age for c in layout.cameras}}
        for name, (topic, _type) in sources.items():
            max_age = ages.get(name, 1.0)
            # at least one message per max_age; no upper bound (the robot's sensors run at 100s of Hz)
            freq = diagnostic_updater.FrequencyStatus(
                diagnostic_updater.FrequencyStatusParam({"min": 1.0 / max_age, "max": math.inf}, 0.1, 5))
            stamp = diagnostic_updater.TimeStampStatus(diagnostic_updater.TimeStampStatusParam(-0.5, max_age))
            task = diagnostic_updater.CompositeDiagnosticTask(f"input {name} ({topic})")
            task.addTask(freq)
            task.addTask(stamp)
            self.updater.add(task)
            self._ticks[name] = (freq, stamp)
        self.updater.add("state machine", self._state)
        self.updater.add("inference latency", self._latency)
        self.updater.add("safety clamps", self._clamps)
        self.updater.add("warnings", self._warnings)

    def message(self, name: str, stamp: float | None) -> None:
        freq, ts = self._ticks[name]
        freq.tick()
        if stamp is not None:
            ts.tick(float(stamp))

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        now = rospy.Time.now()
        if now < self.updater.last_time:  # ROS time jumped back: the updater would wait until it catches up
            self.updater.last_time = now - rospy.Duration(self.updater.period)
            self.updater.last_time_period_checked = now
        self.updater.update()

    def _state(self, stat):
        s = self.snapshot
        level = LEVEL_OF_STATE.get(s.state, DiagnosticStatus.WARN)
        if s.state == "stopped" and s.restore_ok is False:
            level = DiagnosticStatus.ERROR
        stat.summary(level, f"{s.state}: {s.reason}" if s.reason else s.state)
        stat.add("state", s.state)
        stat.add("reason", s.reason)
        stat.add("dry_run", str(s.dry_run))
        stat.add("arm mode restored (read back)", "n/a" if s.restore_ok is None else str(s.restore_ok))
        for key, value in s.values.items():
            stat.add(key, value)
        return stat

    def _latency(self, stat):
        s = self.snapshot
        late = s.inference_latency_s > s.max_inference_latency_s
        stat.summary(DiagnosticStatus.WARN if late else DiagnosticStatus.OK,
                     f"last inference {s.inference_latency_s * 1e3:.0f} ms (limit {s.max_inference_latency_s * 1e3:.0f} ms)")
        stat.add("last_s", f"{s.inference_latency_s:.4f}")
        stat.add("limit_s", f"{s.max_inference_latency_s:.4f}")
        return stat

    def _warnings(self, stat):
        s = self.snapshot
        stat.summary(DiagnosticStatus.WARN if s.warnings else DiagnosticStatus.OK,
                     "; ".join(s.warnings) if s.warnings else "none")
        for i, warning in enumerate(s.warnings):
            stat.add(f"warning {i + 1}", warning)
        return stat

    def _clamps(self, stat):
        s = self.snapshot
        stat.summary(DiagnosticStatus.OK, f"{s.clamps} clamps")
        stat.add("clamps", str(s.clamps))
        stat.add("per joint and reason", s.safety_summary)
        return stat
