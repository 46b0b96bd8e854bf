"""What the stand-in does with commands: arm control modes, first-order tracking within the limits.

It models the controller's interface rules that matter to a client (arm commands only act in external
control mode; a /kuavo_arm_traj message without exactly 14 names is rejected; targets are clipped to the
URDF limits) and the hazards a client must handle as Kuavo's controller presents them:
- the switch to external arm control takes effect `arm_mode_switch_s` after the service answered (Kuavo: up
  to 2 s while the controller syncs the MPC arm target); arm commands before that are ignored;
- the direct-to-WBC arm target starts at zero and is only moved by arm commands: switching direct-to-WBC on
  before a command at the measured pose drives the arms toward zero (or a stale target), and switching it
  off hands the last such target back to the MPC path;
- a claw command that arrives while the claw moves is dropped unless commands stream less than 200 ms apart.
Nothing else: no dynamics of the body, no contact, no latency model. It also scores the depalletize task
(sim/task.py): where the box is and whether it was grasped and placed.
"""

from __future__ import annotations

import dataclasses
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
CLAW_STREAM_S = 0.2  # Kuavo's claw controller: commands closer than this count as a stream
CLAW_SETTLED_WITHIN = 0.5  # claw units from its target: closer than this it has reached it
HEAD_LIMITS_DEG = ((-80.0, 80.0), (-25.0, 25.0))  # yaw, pitch


@dataclass(frozen=True)
class SimConfig:
    robot: RobotSpec
    sdk_params: Mapping[str, Any] = field(default_factory=dict)
    arm_tau: float = 0.05
    claw_tau: float = 0.15
    torso_tau: float = 0.3
    nominal_height: float = 0.8328
    initial_arm_mode: int = ARM_AUTO_SWING
    arm_mode_switch_s: float = 1.0
    rate: float = 200.0
    camera_rate: float = 10.0
    image_size: tuple[int, int] = (96, 128)
    task: TaskConfig = TaskConfig()


def load_sim_config(path: str | Path | None = None, robot: str | None = None) -> SimConfig:
    """config/sim.yaml; `robot` (e.g. 5_wheel) replaces its robot and lays that robot's sdk_params on top."""
    with open(path or config_dir() / "sim.yaml") as f:
        data = yaml.safe_load(f)
    name = robot or data.get("robot", "4_pro")
    spec = load_robot(name)
    if spec.num_joints is None:  # wheel variants differ below the arms: the stand-in has arms + 2 head joints
        spec = dataclasses.replace(spec, num_joints=spec.arm_slice[1] + len(HEAD_JOINTS))
    dyn = data.get("dynamics") or {}
    return SimConfig(
        robot=spec,
        sdk_params={**(data.get("sdk_params") or {}), **((data.get("robot_sdk_params") or {}).get(name) or {})},
        arm_tau=float(dyn.get("arm_tau", 0.05)),
        claw_tau=float(dyn.get("claw_tau", 0.15)),
        torso_tau=float(dyn.get("torso_tau", 0.3)),
        nominal_height=float(data.get("nominal_height", 0.8328)),
        initial_arm_mode=int(data.get("initial_arm_mode", ARM_AUTO_SWING)),
        arm_mode_switch_s=float(data.get("arm_mode_switch_s", 1.0)),
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
    head_deg: tuple[float, float] = (0.0, 0.0)  # yaw, pitch as last commanded
    claw_moving: tuple[bool, bool] = (False, False)  # lejuClawState: kMoving while away from the target


class StandInModel:
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
        self._pending_mode: tuple[int, float] | None = None  # (mode, sim time it takes effect)
        self._direct_to_wbc = False
        self._wbc_target = np.zeros(ARM_DOF)  # humanoidController zero-initialises it
        self._last_claw_command = -float("inf")
        self.claw_commands_dropped = 0
        self._head = (0.0, 0.0)
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
            self._wbc_target = self._arm_target.copy()
        return None

    def command_claw(self, positions: Sequence[float]) -> str | None:
        if len(positions) != 2 or not np.all(np.isfinite(positions)):
            return f"rejected: claw command needs 2 finite positions, got {list(positions)}"
        with self._lock:
            since = self._time - self._last_claw_command
            self._last_claw_command = self._time
            moving = float(np.max(np.abs(self._claw_target - self._claw))) > CLAW_SETTLED_WITHIN
            if moving and since >= CLAW_STREAM_S:
                self.claw_commands_dropped += 1
                return (f"dropped: the claw is moving and the last command was {since:.2f} s ago "
                        f"(stream commands < {CLAW_STREAM_S:g} s apart)")
            self._claw_target = np.clip(np.asarray(positions, dtype=np.float64), *CLAW_RANGE)
        return None

    def command_head(self, yaw_deg: float, pitch_deg: float) -> str | None:
        if not (math.isfinite(yaw_deg) and math.isfinite(pitch_deg)):
            return "rejected: non-finite head command"
        (ylo, yhi), (plo, phi) = HEAD_LIMITS_DEG
        with self._lock:
            self._head = (float(np.clip(yaw_deg, ylo, yhi)), float(np.clip(pitch_deg, plo, phi)))
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
        """Accepted at once; a switch to external control takes effect `arm_mode_switch_s` later."""
        if mode not in ARM_MODES:
            return False, f"unknown arm mode {mode}; known: {ARM_MODES}"
        with self._lock:
            if mode == ARM_EXTERNAL and self._mode != ARM_EXTERNAL and self.config.arm_mode_switch_s > 0:
                self._pending_mode = (mode, self._time + self.config.arm_mode_switch_s)
                return True, f"arm mode {mode} ({ARM_MODES[mode]}) in {self.config.arm_mode_switch_s:g} s"
            self._apply_mode(mode)
        return True, f"arm mode {mode} ({ARM_MODES[mode]})"

    def _apply_mode(self, mode: int) -> None:
        self._mode, self._pending_mode = mode, None
        # Entering external control holds the current pose until a command arrives (no jump);
        # auto swing brings the arms back to rest; keep pose freezes them.
        current = self._q[self._arm].copy()
        self._arm_target = self._rest.copy() if mode == ARM_AUTO_SWING else current

    def reset_task(self, box_offset: tuple[float, float]) -> TaskState:
        """A new task episode: the box back on the pallet at `box_offset` (m, lateral and forward)."""
        with self._lock:
            return self._task.reset(box_offset)

    def set_direct_to_wbc(self, enabled: bool) -> None:
        with self._lock:
            if self._direct_to_wbc and not enabled:
                self._arm_target = self._wbc_target.copy()  # the MPC path continues from the last target
            self._direct_to_wbc = enabled

    @property
    def arm_mode(self) -> int:
        return self._mode

    @property
    def direct_to_wbc(self) -> bool:
        return self._direct_to_wbc

    @property
    def head_deg(self) -> tuple[float, float]:
        return self._head

    def step(self, dt: float) -> SimSnapshot:
        cfg = self.config
        with self._lock:
            prev = self._q.copy()
            if self._pending_mode is not None and self._time >= self._pending_mode[1]:
                self._apply_mode(self._pending_mode[0])
            if self._mode == ARM_EXTERNAL and self._direct_to_wbc:  # the WBC tracks its own (zero-initialised) target
                self._q[self._arm] += (self._wbc_target - self._q[self._arm]) * _gain(dt, cfg.arm_tau)
            elif self._mode != ARM_FIXED:
                self._q[self._arm] += (self._arm_target - self._q[self._arm]) * _gain(dt, cfg.arm_tau)
            self._claw += (self._claw_target - self._claw) * _gain(dt, cfg.claw_tau)
            self._torso += (self._torso_target - self._torso) * _gain(dt, cfg.torso_tau)
            self._dq = (self._q - prev) / dt if dt > 0 else np.zeros_like(self._q)
            self._time += dt
            task = self._task.step(self._q[self._arm], self._claw)
            return SimSnapshot(q=self._q.copy(), dq=self._dq.copy(), arm=self._q[self._arm].copy(),
                               claw=self._claw.copy(), torso=self._torso.copy(),
                               base_height=cfg.nominal_height + self._torso[0], arm_mode=self._mode,
                               direct_to_wbc=self._direct_to_wbc, time=self._time, head_deg=self._head,
                               claw_moving=tuple(bool(v) for v in np.abs(self._claw_target - self._claw) > CLAW_SETTLED_WITHIN),
                               task=task)


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
# The wheel-arm's lower body, named so its links are the ones kuavo-humanoid-sdk 1.5.0 looks for (knee_link ...).
WHEEL_LOWER_JOINTS = ("knee_joint", "leg_joint", "waist_joint", "waist_yaw_joint")


def urdf_description(robot: RobotSpec) -> str:
    """A skeletal URDF with the joint names and arm limits the SDK parses (/humanoid_description).

    Only the kinematic tree's names and <limit> tags: the SDK maps link names to joint names and clips
    arm commands to these limits. No geometry or inertia.
    """
    lower = {len(LEG_JOINTS): LEG_JOINTS, len(WHEEL_LOWER_JOINTS): WHEEL_LOWER_JOINTS}[robot.arm_slice[0]]
    names = list(lower) + list(robot.arm_joint_names) + list(HEAD_JOINTS)
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
