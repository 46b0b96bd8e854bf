"""The `sdk` backend: the same commands through kuavo-humanoid-sdk (1.5.0).

- arms: KuavoRobot.control_arm_joint_positions (radians; the SDK clips to the URDF limits it reads from
  /humanoid_description and publishes /kuavo_arm_traj in degrees);
- claws: LejuClaw.control when the target moved by `sdk.claw_deadband` and, for the held target, every
  `sdk.claw_resend_s` (the SDK queues one blocking service call per command, which a 100 Hz stream would pile
  up; Kuavo's claw controller drops a command that arrives while the claw moves unless commands stream less
  than 200 ms apart). A command the SDK refuses is not recorded as sent, so the next tick sends it again;
- torso: /cmd_pose from the topics config. SDK 1.5.0 has no streaming torso height+pitch command:
  squat() plans a 3 s MPC trajectory per call after querying the controller list, and
  control_command_pose() carries no pitch.

KuavoSDK().Init() calls exit(1) when the master or node /humanoid_gait_switch_by_name is missing; we check
both first and raise BackendError instead, and init our own node before it (else it creates its own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import rosgraph
import rospy

from groot_ros.ros.backends.base import CommandBackend
from groot_ros.ros.backends.config import BackendError
from groot_ros.ros.backends.topics import ChannelPublisher


def sdk_prerequisite_problems(required_node: str) -> list[str]:
    """What KuavoSDK().Init() would exit() on, as sentences; empty when it can start."""
    uri = rosgraph.get_master_uri()
    master = rosgraph.Master("/groot_ros_sdk_check", master_uri=uri)
    try:
        master.getPid()
    except Exception as exc:  # noqa: BLE001 - socket errors of every kind mean the same here
        return [f"no ROS master at {uri} ({exc}); start the robot's controller or the stand-in "
                f"(rosrun groot_ros kuavo_loopback_sim), or fix ROS_MASTER_URI"]
    if master.hasParam("/robot_type") and master.getParam("/robot_type") == 1:
        return []  # wheel-arm robots: the SDK does not need the gait node
    try:
        master.lookupNode(required_node)
    except rosgraph.MasterError:
        return [f"node {required_node} is not running (KuavoSDK().Init() would exit the process); "
                f"start the robot's gait switch node (humanoid_switch_gait.launch) or the stand-in sim"]
    return []


@dataclass
class ClawStream:
    """When to (re-)send the claw target: on a change beyond the deadband, and every `resend_s` for a held
    target; only a command the SDK accepted counts as sent."""

    deadband: float
    resend_s: float
    sent: np.ndarray | None = field(default=None)
    sent_at: float = -float("inf")

    def due(self, target: np.ndarray, now: float) -> bool:
        return (self.sent is None or float(np.max(np.abs(target - self.sent))) >= self.deadband
                or now - self.sent_at >= self.resend_s)

    def result(self, target: np.ndarray, now: float, accepted: bool) -> None:
        if accepted:
            self.sent, self.sent_at = np.array(target, dtype=np.float64), now


class SdkBackend(CommandBackend):
    def _connect(self) -> None:
        problems = sdk_prerequisite_problems(self.config.sdk_required_node)
        if problems:
            raise BackendError("kuavo-humanoid-sdk cannot start: " + "; ".join(problems))
        if not rospy.core.is_initialized():
            raise BackendError("init this process's rospy node before starting the sdk backend")
        try:
            from kuavo_humanoid_sdk import KuavoRobot, KuavoSDK, LejuClaw
        except ImportError as exc:
            raise BackendError(f"kuavo-humanoid-sdk is not importable ({exc}); pip install kuavo-humanoid-sdk==1.5.0") from exc
        try:
            if not KuavoSDK.Init(log_level="WARN"):
                raise BackendError("KuavoSDK.Init() failed (see the kuavo-humanoid-sdk log above)")
        except RuntimeError as exc:
            raise BackendError(f"KuavoSDK.Init() failed: {exc}") from exc
        used = set(self.layout.action_channels)
        self._robot = KuavoRobot()
        self._claw = LejuClaw() if "claw" in used else None
        self._torso = ChannelPublisher(self.layout.commands["torso"], self.layout, self.config) if "torso" in used else None
        self._claw_stream = ClawStream(self.config.sdk_claw_deadband, self.config.sdk_claw_resend_s)

    def _send(self, channel: str, values: np.ndarray) -> None:
        if channel == "arm":
            if not self._robot.control_arm_joint_positions(values.tolist()):
                rospy.logwarn_throttle(1.0, "kuavo-humanoid-sdk refused the arm command (arm mode switch failed?)")
        elif channel == "claw":
            now = time.monotonic()
            if self._claw_stream.due(values, now):
                n = len(values)
                # SDK 1.5.0 queues the call and returns None (documented: bool); only False is a refusal
                sent = self._claw.control(values.tolist(), [self.config.claw_velocity] * n, [self.config.claw_effort] * n)
                self._claw_stream.result(values, now, sent is not False)
                if sent is False:
                    rospy.logwarn_throttle(1.0, f"kuavo-humanoid-sdk refused the claw command {values.tolist()}; "
                                                "re-sending on the next tick")
        elif channel == "torso":
            self._torso.publish(values)
