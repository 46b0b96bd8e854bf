"""A toy picture per camera, drawn with numpy, that visibly follows the arm joints, claws and torso.

It is not a rendering of the robot: its only job is that images change when (and only when) the commanded
state changes, so closed-loop tests and a human watching rqt_image_view can see commands take effect.
The head (or chest) view shows both arms as two-segment lines from the shoulders with claw jaws at the
ends over a table with a box; a wrist view shows that side's jaws close up and the box moving with the
wrist joints. Torso height and pitch move the table edge. The box is drawn where the task (sim/task.py) says
it is: on the table at `box_offset` (m, lateral + to the robot's left, forward + away), or, when `held`,
between the claws (both hands in the overview, the jaws in a wrist view). The target area (the conveyor
strip on the robot's left, `target_lateral`) is drawn on the table, so the pictures show the task's progress.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from groot_ros.sim.task import TaskConfig

SKY = np.array([70, 80, 95], np.uint8)
TABLE = np.array([150, 110, 70], np.uint8)
BOX = np.array([255, 230, 40], np.uint8)  # bright yellow: far from the table, sky, target and arm colours
ARM_COLORS = (np.array([240, 140, 30], np.uint8), np.array([60, 200, 90], np.uint8))  # left, right
JAW = np.array([235, 235, 235], np.uint8)
TARGET = np.array([90, 90, 90], np.uint8)
TARGET_LATERAL = TaskConfig.target_lateral
BOX_HALF = (0.14, 0.11)  # image units
# Image units (fractions of the image height) per metre of box offset: lateral to the left, forward to the top.
# Large on purpose: the policy sees the cameras at 56x56 through a small vision tower, and where the box is
# (+-8 cm laterally) decides the grasp pose, so it must move the box across image patches (docs/tiny_training.md).
BOX_LATERAL_PER_M, BOX_FORWARD_PER_M = 3.5, 3.0


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in normalised coordinates: x in [0, width/height], y in [0, 1] (y down)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return (xs + 0.5) / height, (ys + 0.5) / height


def _segment(img: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, color: np.ndarray) -> None:
    xs, ys = _grid(*img.shape[:2])
    ab = b - a
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    mask = (xs - a[0] - t * ab[0]) ** 2 + (ys - a[1] - t * ab[1]) ** 2 <= radius**2
    img[mask] = color


def _rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: np.ndarray) -> None:
    xs, ys = _grid(*img.shape[:2])
    img[(xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)] = color


def _background(img: np.ndarray, torso: np.ndarray, box_offset: tuple[float, float] | None,
                shift: tuple[float, float] = (0.0, 0.0), target: tuple[float, float] = TARGET_LATERAL) -> None:
    """Sky, table, the target strip and (unless None: it is held) the box on the table, all moved by `shift`."""
    aspect = img.shape[1] / img.shape[0]
    horizon = float(np.clip(0.45 - 1.5 * torso[0] + 0.8 * torso[1], 0.05, 0.95))
    img[:] = SKY
    _rect(img, 0.0, horizon, aspect, 1.0, TABLE)
    x = lambda lateral: 0.5 * aspect + shift[0] - BOX_LATERAL_PER_M * lateral  # noqa: E731
    _rect(img, x(target[1]), horizon + 0.05 + shift[1], x(target[0]), horizon + 0.35 + shift[1], TARGET)
    if box_offset is not None:
        _box(img, np.array([x(box_offset[0]), horizon + 0.18 + shift[1] - BOX_FORWARD_PER_M * box_offset[1]]))


def _box(img: np.ndarray, centre: np.ndarray, scale: float = 1.0) -> None:
    _rect(img, centre[0] - scale * BOX_HALF[0], centre[1] - scale * BOX_HALF[1], centre[0] + scale * BOX_HALF[0],
          centre[1] + scale * BOX_HALF[1], BOX)


def _jaws(img: np.ndarray, tip: np.ndarray, direction: np.ndarray, claw: float, size: float) -> None:
    """Two jaws along `direction`; 0 = open (wide), 100 = closed (touching)."""
    normal = np.array([-direction[1], direction[0]])
    half_gap = size * (0.15 + 0.85 * (1.0 - float(np.clip(claw, 0, 100)) / 100.0))
    for side in (-1.0, 1.0):
        base = tip + side * half_gap * normal
        _segment(img, base, base + size * 1.2 * direction, size * 0.18, JAW)


def overview(arm: np.ndarray, claw: np.ndarray, torso: np.ndarray, size: tuple[int, int],
             box_offset: tuple[float, float] = (0.0, 0.0), held: bool = False,
             target: tuple[float, float] = TARGET_LATERAL) -> np.ndarray:
    img = np.empty((*size, 3), np.uint8)
    _background(img, torso, None if held else box_offset, target=target)
    aspect = size[1] / size[0]
    hands = []
    for side in (0, 1):
        q = arm[7 * side: 7 * side + 7]
        sign = 1.0 if side == 0 else -1.0  # left arm on the image's left, mirrored joints
        shoulder = np.array([(0.25 if side == 0 else 0.75) * aspect, 0.02])
        reach1 = 0.12 + 0.2 * abs(np.sin(q[0]))  # forward shoulder pitch lengthens the upper arm in view
        ang1 = np.pi / 2 + sign * (0.8 * q[1] + 0.5 * q[2])
        elbow = shoulder + reach1 * np.array([np.cos(ang1), np.sin(ang1)])
        ang2 = ang1 + sign * (0.9 * q[3] + 0.6 * q[4])
        reach2 = 0.1 + 0.15 * abs(np.sin(q[0] + q[3]))
        hand = elbow + reach2 * np.array([np.cos(ang2), np.sin(ang2)])
        _segment(img, shoulder, elbow, 0.035, ARM_COLORS[side])
        _segment(img, elbow, hand, 0.028, ARM_COLORS[side])
        ang3 = ang2 + 0.8 * q[5] + 0.5 * q[6]
        hands.append((hand, np.array([np.cos(ang3), np.sin(ang3)])))
    if held:  # between the claws: the midpoint of the two jaw tips
        _box(img, 0.5 * sum(h + 0.06 * d for h, d in hands))
    for side, (hand, direction) in enumerate(hands):
        _jaws(img, hand, direction, claw[side], 0.05)
    return img


def wrist(side: int, arm: np.ndarray, claw: np.ndarray, torso: np.ndarray, size: tuple[int, int],
          box_offset: tuple[float, float] = (0.0, 0.0), held: bool = False,
          target: tuple[float, float] = TARGET_LATERAL) -> np.ndarray:
    q = arm[7 * side: 7 * side + 7]
    img = np.empty((*size, 3), np.uint8)
    shift = (0.3 * np.sin(q[4] + q[6]) + 0.2 * np.sin(q[2]), 0.25 * np.sin(q[5] + 0.5 * q[3]))
    _background(img, torso, None if held else box_offset, shift, target)
    aspect = size[1] / size[0]
    if held:  # close up, between the jaws
        _box(img, np.array([0.5 * aspect, 0.8]), 1.6)
    _jaws(img, np.array([0.5 * aspect, 1.0]), np.array([0.0, -1.0]), claw[side], 0.22)
    img[:3, :] = ARM_COLORS[side]  # a colour bar tells the two wrist cameras apart
    return img


def render(camera: str, arm: np.ndarray, claw: np.ndarray, torso: np.ndarray, size: tuple[int, int],
           box_offset: tuple[float, float] = (0.0, 0.0), held: bool = False,
           target: tuple[float, float] = TARGET_LATERAL) -> np.ndarray:
    """uint8 RGB (H, W, 3) for a logical camera name from the config (head, chest, wrist_left, wrist_right).

    box_offset: where the box is on the table (m), or, with held, that the claws carry it."""
    if "left" in camera:
        return wrist(0, arm, claw, torso, size, box_offset, held, target)
    if "right" in camera:
        return wrist(1, arm, claw, torso, size, box_offset, held, target)
    return overview(arm, claw, torso, size, box_offset, held, target)
