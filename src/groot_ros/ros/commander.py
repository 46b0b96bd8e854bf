"""The command path outside the policy, shared by the policy node and replay-episode: one backend, streamed at
the control rate through the safety envelope, each step bounded in time.

- `startup(start_pose)`: head preset, claws open, arm mode external (read back), a slow move to the start pose,
  wait until the measured pose is within tolerance, direct-to-WBC on after the measured pose was the arm target;
- `play(trajectory)` : a trajectory sampled at the control rate (replay-episode's recorded actions);
- `exit_steps(...)`  : exit motion, direct-to-WBC off (the measured pose sent first), arm mode restored and read
  back; every step runs whatever failed before it.

`command(...)` is the one way a command leaves groot_ros, the policy node's control loop included: to the backend
(none in a dry run) and to the preview (`~command_preview`), stamped with its tick time. The streams are paced by
execution/pacer.py, the rule of every fixed-rate loop here.

The caller owns the measured pose (a function returning the pose in action space or None and why) and the abort
condition (~stop, shutdown); `send_tick` checks it before every command, so a sequence ends within one tick.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import rospy

from groot_ros.core.layout import Layout
from groot_ros.execution.config import ExecutionSettings
from groot_ros.execution.motion import channel_mask, plan_move, pose_error, start_target
from groot_ros.execution.pacer import Pacer
from groot_ros.execution.resample import Trajectory
from groot_ros.execution.runner import Interrupted
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.ros.backends.base import CommandBackend

MeasuredPose = Callable[[], "tuple[np.ndarray | None, str]"]
Preview = Callable[[float, np.ndarray], None]  # (tick time, command)


class StartupFailed(RuntimeError):
    """A start-up step failed or timed out; the message names the step."""


def nominal_height(configured: float | None) -> float:
    """The standing base height /cmd_pose's z offset is relative to (Kuavo sets /com_height)."""
    value = configured if configured is not None else rospy.get_param("/com_height", None)
    if value is None:
        rospy.logwarn("groot_ros: no ~nominal_height and no /com_height: torso offsets measured against 0 m")
        value = 0.0
    return float(value)


def other_commanders(layout: Layout, me: str) -> str:
    """Who else publishes on the robot's command topics, as the master knows it ("" when nobody): two nodes
    commanding one robot interleave their targets (thousands of rate violations in seconds), so the node refuses
    to start, or holds, while another one is there."""
    import rosgraph

    topics = {layout.commands[ch].topic for ch in layout.action_channels}
    publishers, _subscribers, _services = rosgraph.Master(me).getSystemState()
    found = [f"{node} on {topic}" for topic, nodes in publishers if topic in topics for node in nodes if node != me]
    return f"another node commands the robot: {', '.join(sorted(found))}" if found else ""


class Commander:
    def __init__(self, layout: Layout, settings: ExecutionSettings, backend: CommandBackend | None,
                 measured_pose: MeasuredPose, should_abort: Callable[[], bool], preview: Preview | None = None,
                 clock: Callable[[], float] | None = None):
        """backend None: a dry run (commands reach only the preview). clock: the tick time of the sequences'
        commands (default ROS time)."""
        self.layout = layout
        self.settings = settings
        self.backend = backend
        self.measured_pose = measured_pose
        self.should_abort = should_abort
        self.preview = preview
        self.clock = clock or rospy.get_time
        self.dt = settings.execution.tick_dt
        self.pacer = Pacer(self.dt)

    def envelope(self, reference: np.ndarray) -> SafetyEnvelope:
        """A fresh envelope (the node's limits) whose first command may only step away from `reference`."""
        envelope = SafetyEnvelope(self.layout, self.settings.safety, self.settings.execution.control_rate)
        envelope.reset(reference)
        return envelope

    # -- primitives -----------------------------------------------------------------------------------------

    def check_abort(self) -> None:
        if self.should_abort():
            raise Interrupted("stop requested")

    def require_pose(self, step: str) -> np.ndarray:
        pose, problem = self.measured_pose()
        if pose is None or not np.isfinite(pose).all():
            raise StartupFailed(f"no valid measured pose before {step}: {problem or 'non-finite values'}")
        return pose

    def command(self, command: np.ndarray, stamp: float | None = None) -> None:
        """One action vector (already through an envelope) to the robot and the preview, stamped with its tick
        time (default: now on the clock)."""
        if self.backend is not None:
            self.backend.send(self.layout.channel_values(command))
        if self.preview is not None:
            self.preview(self.clock() if stamp is None else stamp, command)

    def send_tick(self, command: np.ndarray) -> None:
        """One command, then wait for the next control tick (no catching up)."""
        self.check_abort()
        self.command(command)
        self.pacer.wait()

    def _begin(self) -> None:
        """A stream starts its own tick grid now: the time between two steps (a mode switch) is not missed ticks."""
        self.pacer.restart()
        self.pacer.wait()

    def stream(self, seconds: float, send: Callable[[], None]) -> None:
        self._begin()
        deadline = time.monotonic() + seconds
        while True:
            self.check_abort()
            send()
            if time.monotonic() >= deadline:
                return
            self.pacer.wait()

    def stream_until(self, timeout: float, send: Callable[[], None], done: Callable[[np.ndarray], bool],
                     what: str) -> None:
        self._begin()
        deadline = time.monotonic() + timeout
        while True:
            self.check_abort()
            send()
            pose, _problem = self.measured_pose()
            if pose is not None and np.isfinite(pose).all() and done(pose):
                rospy.loginfo("groot_ros: start-up: %s", what)
                return
            if time.monotonic() > deadline:
                raise StartupFailed(f"timed out after {timeout:g} s waiting for: {what}")
            self.pacer.wait()

    # -- sequences ------------------------------------------------------------------------------------------

    def startup(self, start_pose: np.ndarray | None = None) -> SafetyEnvelope | None:
        """Head, claws, arm mode, slow move to the start pose, settle, direct-to-WBC; each step bounded in time.
        start_pose: an action vector (a dataset's first action) instead of config/execution.yaml's pose.
        Returns the envelope whose last command is where the sequence left the arm target (None: disabled)."""
        cfg = self.settings.startup
        self.backend.connect()
        if not cfg.enabled:
            self.backend.arm_mode.engage()
            return None
        layout = self.layout
        if cfg.head:
            self.stream(cfg.head_settle_s, lambda: self.backend.send_head(cfg.head_yaw_deg, cfg.head_pitch_deg))
            rospy.loginfo("groot_ros: start-up: head at yaw %.0f, pitch %.0f deg", cfg.head_yaw_deg, cfg.head_pitch_deg)
        measured = self.require_pose("the claws opened")
        if cfg.open_claws and "claw" in layout.commands:
            opened = np.full(layout.commands["claw"].dim, layout.robot.claw_limits[0])
            target = measured.copy()
            target[channel_mask(layout, "claw")] = layout.robot.claw_limits[0]
            self.stream_until(cfg.claw_timeout_s, lambda: self.backend.send({"claw": opened}),
                              lambda pose: pose_error(layout, pose, target, "claw") <= cfg.claw_tolerance,
                              "claws open")
        self.backend.arm_mode.engage()  # external control, read back (BackendError says what it read)
        measured = self.require_pose("the arm mode switched")
        envelope = self.envelope(measured)
        target = start_target(layout, measured, cfg, start_pose)
        if target is not None:
            move = plan_move(layout, measured, target, cfg.move_time_s, cfg.max_joint_velocity)
            rospy.loginfo("groot_ros: start-up: moving to the start pose over %.1f s", move.duration)
            self._begin()
            for waypoint in move.waypoints(self.dt):
                self.send_tick(envelope.apply(waypoint))
            tolerance = np.radians(cfg.tolerance_deg)
            self.stream_until(cfg.settle_timeout_s,
                              lambda: self.command(envelope.apply(target)),
                              lambda pose: pose_error(layout, pose, target, "arm") <= tolerance,
                              f"arms within {cfg.tolerance_deg:g} deg of the start pose")
        if self.backend.direct_to_wbc_wanted:
            self.direct_to_wbc(True, envelope)
        return envelope

    def direct_to_wbc(self, enabled: bool, envelope: SafetyEnvelope | None = None) -> None:
        """The measured pose is streamed as the arm target first: Kuavo's WBC target starts at zero (or stale).
        With the envelope of the commands before it, the target walks there at the rate limit (a moving arm lags
        its last command) instead of jumping."""
        measured = self.require_pose("direct-to-WBC")
        arm_dims = channel_mask(self.layout, "arm")

        def send() -> None:
            target = measured
            if envelope is not None and envelope.last is not None:
                target = envelope.last
                target[arm_dims] = measured[arm_dims]
                target = envelope.apply(target)
            self.backend.send({"arm": self.layout.channel_values(target)["arm"]})

        self.stream(self.settings.startup.wbc_target_s, send)
        ok, message = self.backend.arm_mode.set_direct_to_wbc(enabled)
        if not ok:
            raise StartupFailed(f"direct-to-WBC {'on' if enabled else 'off'} failed: {message}")

    def play(self, trajectory: Trajectory, envelope: SafetyEnvelope,
             on_tick: Callable[[float, np.ndarray, np.ndarray], None]) -> None:
        """Samples the trajectory every control tick from its start to its last row, sends it through the
        envelope, and calls on_tick(t, command, measured pose or NaN) right before each command."""
        self._begin()
        for t in trajectory.tick_times(self.dt):
            command = envelope.apply(trajectory.sample(t))
            pose, _problem = self.measured_pose()
            on_tick(t, command, pose if pose is not None else np.full(self.layout.action_dim, np.nan))
            self.send_tick(command)

    def exit_steps(self, envelope: SafetyEnvelope | None = None,
                   exit_target: Callable[[np.ndarray], np.ndarray] | None = None,
                   seconds: float = 0.0) -> tuple[list[str], bool]:
        """Exit motion (from the envelope's last command to exit_target(last) over `seconds`), direct-to-WBC off,
        arm mode back; every step runs whatever failed before. Returns the report lines and whether the arm
        mode read back as restored."""
        lines = []
        steps = (("exit motion", lambda: self._exit_motion(envelope, exit_target, seconds)),
                 ("direct-to-WBC off", lambda: self._exit_direct_to_wbc(envelope)))
        for name, step in steps:
            try:
                line = step()
                if line:
                    lines.append(line)
            except Exception as exc:  # noqa: BLE001 - reported; the restore below runs anyway
                lines.append(f"{name} failed: {type(exc).__name__}: {exc}")
        try:
            report = self.backend.shutdown()
            ok = report.ok
            lines.append(str(report))
        except Exception as exc:  # noqa: BLE001
            ok = False
            lines.append(f"arm mode restore failed: {type(exc).__name__}: {exc}")
        return lines, ok

    def _exit_motion(self, envelope: SafetyEnvelope | None, exit_target, seconds: float) -> str:
        last = envelope.last if envelope is not None else None
        if last is None or exit_target is None or not self.backend.arm_mode.engaged:
            return ""
        target = exit_target(last)
        if np.allclose(target, last):
            return ""
        steps = max(1, int(seconds / self.dt))
        self._begin()
        for k in range(1, steps + 1):
            self.send_tick(envelope.apply(last + (target - last) * min(1.0, k / steps)))
        return "exit motion done"

    def _exit_direct_to_wbc(self, envelope: SafetyEnvelope | None) -> str:
        if not self.backend.arm_mode.direct_to_wbc_on:
            return ""
        self.direct_to_wbc(False, envelope)
        return "direct-to-WBC off (after the measured pose was sent)"
