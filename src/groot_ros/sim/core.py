"""What the stand-in does with commands: arm control modes, first-order tracking within the limits.

It models the controller's interface rules that matter to a client (arm commands only act in external
control mode; a /kuavo_arm_traj message without exactly 14 names is rejected; targets are clipped to the
URDF limits) and nothing else: no dynamics of the body, no contact, no latency model. It also scores the
depalletize task (sim/task.py): where the box is and whether it was grasped and placed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from groot_ros.core.layout import RobotSpec, load_robot
from groot_ros.core.paths import config_dir
from groot_ros.sim.task import DepalletizeTask, TaskConfig, TaskState

ARM_FIXED, ARM_AUTO_SWING, ARM_EXTERNAL = 0, 1, 2
ARM_MODES = {ARM_FIXED: "keep pose", ARM_AUTO_SWING: "auto swing", ARM_EXTERNAL: "external control"}
ARM_DOF = 14
CLAW_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class SimConfig:
    robot: RobotSpec
    sdk_params: Mapping[str, Any] = field(default_factory=dict)
    arm_tau: float = 0.05
    claw_tau: float = 0.15
    torso_tau: float = 0.3
    nominal_height: float = 0.8328
    initial_arm_mode: int = ARM_AUTO_SWING
    rate: float = 200.0
    camera_rate: float = 10.0
    image_size: tuple[int, int] = (96, 128)
    task: TaskConfig = TaskConfig()


def load_sim_config(path: str | Path | None = None) -> SimConfig:
    with open(path or config_dir() / "sim.yaml") as f:
        data = yaml.safe_load(f)
    robot = load_robot(data.get("robot", "4_pro"))
    if robot.num_joints is None:
        raise ValueError(f"the stand-in needs a robot with a fixed joint count; '{robot.version}' has num_joints: null")
    dyn = data.get("dynamics") or {}
    return SimConfig(
        robot=robot,
        sdk_params=dict(data.get("sdk_params") or {}),
        arm_tau=float(dyn.get("arm_tau", 0.05)),
        claw_tau=float(dyn.get("claw_tau", 0.15)),
        torso_tau=float(dyn.get("torso_tau", 0.3)),
        nominal_height=float(data.get("nominal_height", 0.8328)),
        initial_arm_mode=int(data.get("initial_arm_mode", ARM_AUTO_SWING)),
        rate=float(data.get("rate", 200.0)),
        camera_rate=float(data.get("camera_rate", 10.0)),
        image_size=tuple(int(v) for v in data.get("image_size", (96, 128))),
        task=TaskConfig.from_dict(data.get("task")),
    )


@dataclass(frozen=True)
class SimSnapshot:
    """One consistent copy of the sim state for publishing and rendering."""

    q: np.ndarray  # (num_joints,) rad
    dq: np.ndarray  # (num_joints,) rad/s
    arm: np.ndarray  # (14,) rad
    claw: np.ndarray  # (2,) 0..100
    torso: np.ndarray  # (2,) height offset m, pitch rad
    base_height: float  # m, absolute
    arm_mode: int
    direct_to_wbc: bool
    time: float
    task: TaskState  # the box and the task's phase (sim/task.py)


class KuavoSimCore:
    """Thread-safe: command methods are called from ROS callbacks, step() from the publishing loop."""

    def __init__(self, config: SimConfig):
        self.config = config
        robot = config.robot
        self._arm = slice(*robot.arm_slice)
        self._limits = robot.arm_limits.copy()
        self._rest = np.clip(np.zeros(ARM_DOF), self._limits[:, 0], self._limits[:, 1])
        self._q = np.zeros(robot.num_joints)
        self._q[self._arm] = self._rest
        self._dq = np.zeros(robot.num_joints)
        self._arm_target = self._rest.copy()
        self._claw = np.zeros(2)
        self._claw_target = np.zeros(2)
        self._torso = np.zeros(2)
        self._torso_target = np.zeros(2)
        self._mode = config.initial_arm_mode
        self._direct_to_wbc = False
        self._time = 0.0
        self._task = DepalletizeTask(config.task)
        self._lock = threading.Lock()

    def command_arm(self, names: Sequence[str], positions: Sequence[float]) -> str | None:
        """A /kuavo_arm_traj message (positions in rad); returns why it was rejected or ignored, None if accepted."""
        if len(names) != ARM_DOF:
            return f"rejected: {len(names)} joint names, the controller needs exactly {ARM_DOF}"
        if len(positions) != ARM_DOF:
            return f"rejected: {len(positions)} positions, expected {ARM_DOF}"
        target = np.asarray(positions, dtype=np.float64)
        if not np.all(np.isfinite(target)):
            return "rejected: non-finite position"
        with self._lock:
            if self._mode != ARM_EXTERNAL:
                return f"ignored: arm mode {self._mode} ({ARM_MODES[self._mode]}), commands act only in mode {ARM_EXTERNAL}"
            self._arm_target = np.clip(target, self._limits[:, 0], self._limits[:, 1])
        return None

    def command_claw(self, positions: Sequence[float]) -> str | None:
        if len(positions) != 2 or not np.all(np.isfinite(positions)):
            return f"rejected: claw command needs 2 finite positions, got {list(positions)}"
        with self._lock:
            self._claw_target = np.clip(np.asarray(positions, dtype=np.float64), *CLAW_RANGE)
        return None

    def command_torso(self, height_offset: float, pitch: float) -> str | None:
        if not (math.isfinite(height_offset) and math.isfinite(pitch)):
            return "rejected: non-finite torso command"
        robot = self.config.robot
        with self._lock:
            self._torso_target = np.array([np.clip(height_offset, *robot.torso_z_limits),
                                           np.clip(pitch, *robot.torso_pitch_limits)])
        return None

    def set_arm_mode(self, mode: int) -> tuple[bool, str]:
        if mode not in ARM_MODES:
            return False, f"unknown arm mode {mode}; known: {ARM_MODES}"
        with self._lock:
            self._mode = mode
            # Entering external control holds the current pose until a command arrives (no jump);
            # auto swing brings the arms back to rest; keep pose freezes them.
            current = self._q[self._arm].copy()
            self._arm_target = self._rest.copy() if mode == ARM_AUTO_SWING else current
        return True, f"arm mode {mode} ({ARM_MODES[mode]})"

    def reset_task(self, box_offset: tuple[float, float]) -> TaskState:
        """A new task episode: the box back on the pallet at `box_offset` (m, lateral and forward)."""
        with self._lock:
            return self._task.reset(box_offset)

    def set_direct_to_wbc(self, enabled: bool) -> None:
        with self._lock:
            self._direct_to_wbc = enabled

    @property
    def arm_mode(self) -> int:
        return self._mode

    @property
    def direct_to_wbc(self) -> bool:
        return self._direct_to_wbc

    def step(self, dt: float) -> SimSnapshot:
        cfg = self.config
        with self._lock:
            prev = self._q.copy()
            if self._mode != ARM_FIXED:
                self._q[self._arm] += (self._arm_target - self._q[self._arm]) * _gain(dt, cfg.arm_tau)
            self._claw += (self._claw_target - self._claw) * _gain(dt, cfg.claw_tau)
            self._torso += (self._torso_target - self._torso) * _gain(dt, cfg.torso_tau)
            self._dq = (self._q - prev) / dt if dt > 0 else np.zeros_like(self._q)
            self._time += dt
            task = self._task.step(self._q[self._arm], self._claw)
            return SimSnapshot(q=self._q.copy(), dq=self._dq.copy(), arm=self._q[self._arm].copy(),
                               claw=self._claw.copy(), torso=self._torso.copy(),
                               base_height=cfg.nominal_height + self._torso[0], arm_mode=self._mode,
                               direct_to_wbc=self._direct_to_wbc, time=self._time, task=task)


def _gain(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0


def mpc_state_vector(snap: SimSnapshot) -> np.ndarray:
    """OCS2 humanoid state layout: [0:6] base twist, [6:12] base pose x y z yaw pitch roll, then joints."""
    value = np.zeros(12 + len(snap.q), dtype=np.float32)
    value[8] = snap.base_height
    value[10] = snap.torso[1]
    value[12:] = snap.q
    return value


LEG_JOINTS = tuple(f"leg_{s}{i}_joint" for s in "lr" for i in range(1, 7))
HEAD_JOINTS = ("zhead_1_joint", "zhead_2_joint")


def urdf_description(robot: RobotSpec) -> str:
    """A skeletal URDF with the joint names and arm limits the SDK parses (/humanoid_description).

    Only the kinematic tree's names and <limit> tags: the SDK maps link names to joint names and clips
    arm commands to these limits. No geometry or inertia.
    """
    names = list(LEG_JOINTS) + list(robot.arm_joint_names) + list(HEAD_JOINTS)
    limits = {n: (-math.pi, math.pi) for n in names}
    limits.update({n: tuple(robot.arm_limits[i]) for i, n in enumerate(robot.arm_joint_names)})
    links = ['  <link name="base_link"/>']
    joints = []
    for name in names:
        link = name.replace("_joint", "_link")
        lo, hi = limits[name]
        links.append(f'  <link name="{link}"/>')
        joints.append(
            f'  <joint name="{name}" type="revolute"><parent link="base_link"/><child link="{link}"/>'
            f'<axis xyz="0 1 0"/><limit lower="{lo:.6f}" upper="{hi:.6f}" effort="100" velocity="10"/></joint>'
        )
    return "\n".join(['<?xml version="1.0"?>', '<robot name="kuavo_loopback_sim">', *links, *joints, "</robot>"])
