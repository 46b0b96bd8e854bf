"""The stand-in's depalletize task: where the box is, when it counts as grasped, carried and placed.

A scoring rule in joint space, not physics. The box sits on the pallet at `box_offset` (m: lateral + to the
robot's left, forward + away). It is grasped when both claws close (a closing edge: claws that arrive already
closed knock the box, they do not grasp it) while every arm joint is within `grasp_tolerance_deg` of the grasp
pose for that box (`grasp_arms`); it then moves sideways with the hands (the mean shoulder yaw: `hand_lateral`)
and keeps its forward position; it is put down where both claws open. Put down inside the target area (the
conveyor on the robot's left) it is placed and the task succeeded; anywhere else it was dropped there and
can be grasped again from that spot. Lifting is not scored (nothing falls), contacts, forces, slip and the
torso are not modelled. ROS-free; sim/standin_model.py steps it with the measured arms and claws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

# Left arm grasp pose for the nominal box, degrees (shoulder pitch, roll, yaw, forearm pitch, hand yaw, pitch,
# roll); the right arm mirrors it (roll, yaw and the hand joints change sign).
REACH_DEG = np.array([-45.0, 12.0, 0.0, -55.0, 0.0, -15.0, 0.0])
MIRROR = np.array([1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0])
# How the box offset moves the grasp pose: lateral turns both shoulders' yaw, forward lowers the shoulder pitch
# and opens the forearm. 250 deg/m: 1 deg of yaw is 4 mm of hand travel.
YAW_DEG_PER_M = 250.0
PITCH_DEG_PER_M = -250.0
FOREARM_DEG_PER_M = 200.0
YAW = 2  # shoulder yaw within one arm's 7 joints

ON_PALLET, GRASPED, PLACED, DROPPED = "on_pallet", "grasped", "placed", "dropped"
PHASES = (ON_PALLET, GRASPED, PLACED, DROPPED)


@dataclass(frozen=True)
class TaskConfig:
    grasp_tolerance_deg: float = 8.0  # every arm joint within this of the grasp pose (8 deg of yaw: 3 cm)
    claw_closed: float = 60.0  # both claws above: closed (0 open .. 100 closed)
    claw_open: float = 40.0  # both claws below: open
    target_lateral: tuple[float, float] = (0.13, 0.30)  # m: the conveyor on the robot's left

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TaskConfig:
        d = dict(data or {})
        return cls(grasp_tolerance_deg=float(d.get("grasp_tolerance_deg", cls.grasp_tolerance_deg)),
                   claw_closed=float(d.get("claw_closed", cls.claw_closed)),
                   claw_open=float(d.get("claw_open", cls.claw_open)),
                   target_lateral=tuple(float(v) for v in d.get("target_lateral", cls.target_lateral)))


def grasp_pose_deg(box_offset: tuple[float, float]) -> np.ndarray:
    """The left arm's grasp pose (degrees) for a box at `box_offset`."""
    lateral, forward = box_offset
    return REACH_DEG + np.array([PITCH_DEG_PER_M * forward, 0.0, YAW_DEG_PER_M * lateral,
                                 FOREARM_DEG_PER_M * forward, 0.0, 0.0, 0.0])


def both_arms(left_deg: np.ndarray) -> np.ndarray:
    """14 arm joints in rad from the left arm's 7 in degrees (the right arm mirrored)."""
    left_deg = np.asarray(left_deg, dtype=np.float64)
    return np.radians(np.concatenate([left_deg, left_deg * MIRROR]))


def grasp_arms(box_offset: tuple[float, float]) -> np.ndarray:
    return both_arms(grasp_pose_deg(box_offset))


def hand_lateral(arm: np.ndarray) -> float:
    """Where the hands are sideways (m, + left): the mean shoulder yaw through the grasp pose's mapping."""
    yaw_deg = np.degrees(0.5 * (arm[YAW] + MIRROR[YAW] * arm[7 + YAW]))
    return float((yaw_deg - REACH_DEG[YAW]) / YAW_DEG_PER_M)


@dataclass(frozen=True)
class TaskState:
    phase: str
    box: tuple[float, float]  # m, lateral and forward: on the table, or where the hands carry it
    held: bool
    success: bool
    grasps: int  # grasps that counted
    missed: int  # claw closings away from the grasp pose
    last_error_deg: float  # the largest joint error from the grasp pose at the last closing


class DepalletizeTask:
    """Not thread-safe on its own: StandInModel steps it under its lock."""

    def __init__(self, config: TaskConfig = TaskConfig(), box_offset: tuple[float, float] = (0.0, 0.0)):
        self.config = config
        self.reset(box_offset)

    def reset(self, box_offset: tuple[float, float]) -> TaskState:
        """A new episode: the box back on the pallet at `box_offset`."""
        self.start_offset = (float(box_offset[0]), float(box_offset[1]))
        self.state = TaskState(phase=ON_PALLET, box=self.start_offset, held=False, success=False, grasps=0,
                               missed=0, last_error_deg=float("nan"))
        self._closed = True  # a closing edge is needed: claws closed at reset do not grasp
        self._grip: tuple[float, float] = (0.0, 0.0)  # box lateral - hand lateral while held
        return self.state

    def in_target(self, lateral: float) -> bool:
        low, high = self.config.target_lateral
        return low <= lateral <= high

    def step(self, arm: np.ndarray, claw: np.ndarray) -> TaskState:
        """Advances the rules with the measured arms (14, rad) and claws (2, 0..100)."""
        cfg, s = self.config, self.state
        closed = bool(np.all(claw > cfg.claw_closed))
        opened = bool(np.all(claw < cfg.claw_open))
        closing = closed and not self._closed
        if closed:
            self._closed = True
        elif opened:
            self._closed = False
        if s.phase in (ON_PALLET, DROPPED) and closing:
            error = float(np.degrees(np.max(np.abs(arm - grasp_arms(s.box)))))
            if error <= cfg.grasp_tolerance_deg:
                self._grip = (s.box[0] - hand_lateral(arm), s.box[1])
                s = replace(s, phase=GRASPED, held=True, grasps=s.grasps + 1, last_error_deg=error)
            else:
                s = replace(s, missed=s.missed + 1, last_error_deg=error)
        elif s.phase == GRASPED:
            box = (hand_lateral(arm) + self._grip[0], self._grip[1])
            if opened:
                placed = self.in_target(box[0])
                s = replace(s, phase=PLACED if placed else DROPPED, box=box, held=False, success=placed)
            else:
                s = replace(s, box=box)
        self.state = s
        return s
