"""A scripted depalletize-like demonstrator in action space: the motion record-demos drives the stand-in through.

One episode: hold at the start pose -> reach for the box (torso bends) -> settle there -> close the claws -> lift
with the torso (Cmd_pose_z / Cmd_pose_pitch) -> carry the box to the conveyor on the left -> open the claws -> back
home.
Poses are keyframes in the command channels (arm rad, claw 0..100, torso offset m / pitch rad), joined by
minimum-jerk segments so velocity and acceleration are zero at every keyframe. Each episode's seed draws a box
offset, which moves the grasp pose (sim/task.py's grasp_arms: what the stand-in scores a grasp against) and
the box in the camera images, how long each phase takes, and where the shoulders are turned at the start (a
yaw drawn independently of the box: the arms are wherever the last task left them); the conveyor is always in
the same place. So a policy trained on these episodes has to look at the box to know where to reach: with
every episode starting from home, the arms' state would tell the reach's direction as soon as it began, and
the tiny model learned that shortcut instead of the pictures (it reached to the average box; docs/tiny_training.md).
It looks at the picture (box on the pallet, in the claws, on the conveyor) to know how far the task has got.

Every keyframe is checked against the policy node's own safety envelope (URDF and forearm limits, torso and
claw ranges) and every segment against its rate limits, so a demonstration is something the node could
replay unclipped. ROS-free; record_demos.py is the ROS edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groot_ros.execution.config import SafetyConfig
from groot_ros.execution.safety import dimension_limits
from groot_ros.core.layout import Layout
from groot_ros.sim.task import REACH_DEG, YAW, YAW_DEG_PER_M, both_arms, grasp_pose_deg

# Left arm keyframes in degrees (shoulder pitch, roll, yaw, forearm pitch, hand yaw, pitch, roll); the right arm
# is the mirror image (sim/task.py MIRROR; config/robots/4_pro.yaml limits).
HOME_DEG = np.array([-20.0, 8.0, 0.0, -30.0, 0.0, 0.0, 0.0])
LIFT_DEG = np.array([-55.0, 12.0, 0.0, -70.0, 0.0, -10.0, 0.0])
# Where the box is carried: over the conveyor (the task's target area starts at 0.13 m), no further than the
# arms' rate limits allow in the carry phase (sim/task.py's 250 deg of shoulder yaw per m).
CARRY_LATERAL_M = 0.17
CARRY_YAW_DEG = YAW_DEG_PER_M * CARRY_LATERAL_M
BOX_LATERAL_M, BOX_FORWARD_M = 0.08, 0.015  # box offsets: the closed loop's unseen boxes are drawn from +-these
# The demonstrations cover a little more than that: a model's reach shrinks toward the average box near the edge of
# what it was shown (measured: the boxes at +-7.5 cm were missed by 8 deg when the demonstrations ended at 8 cm).
DEMO_LATERAL_M = 0.10
START_YAW_DEG = 20.0  # both shoulders' yaw at an episode's start is drawn from +-this
CLAW_OPEN, CLAW_CLOSED = 0.0, 90.0
TORSO_HOME = (0.0, 0.02)  # /cmd_pose height offset (m), pitch (rad)
TORSO_BENT = (-0.05, 0.13)

PHASES = ("hold", "reach", "settle", "close", "lift", "move", "open", "retreat", "rest")  # the segments, in order
# Share of the motion time per moving phase before per-episode variation (reach .. retreat).
# "settle": the arms rest at the grasp pose before the claws close, so that closing follows arriving (a policy
# whose reach runs late still closes on the box, not on the way to it).
PHASE_SHARE = {"reach": 0.17, "settle": 0.05, "close": 0.07, "lift": 0.16, "move": 0.32, "open": 0.07, "retreat": 0.16}
HOLD_S = 0.5  # still before the motion (at the start pose) and after it (at home)
MIN_SECONDS = 8.0  # below this the phases cannot all keep within the node's rate limits (_fit_durations)


@dataclass(frozen=True)
class Variation:
    """What differs between episodes, drawn from the episode seed."""

    box_offset: tuple[float, float]  # m: lateral (+ left), forward (+ away) from the nominal box position
    phase_scale: tuple[float, ...]  # per moving phase (PHASE_SHARE order): relative duration
    start_yaw_deg: float = 0.0  # both shoulders' yaw (mirrored) at the start, independent of the box

    @classmethod
    def sample(cls, seed: int, stratum: tuple[int, int] | None = None, lateral_m: float = DEMO_LATERAL_M) -> Variation:
        """A demonstration's variation; stratum (k, n): the lateral offset from the k-th of n equal slices of
        +-lateral_m, so that n episodes cover the range evenly (a few recorded episodes, no large gaps)."""
        rng = np.random.default_rng(seed)
        low, width = -lateral_m, 2 * lateral_m
        if stratum is not None:
            k, n = stratum
            low, width = low + width * k / n, width / n
        return cls(box_offset=(float(low + width * rng.uniform()), float(rng.uniform(-BOX_FORWARD_M, BOX_FORWARD_M))),
                   phase_scale=tuple(float(v) for v in rng.uniform(0.8, 1.2, len(PHASE_SHARE))),
                   start_yaw_deg=float(rng.uniform(-START_YAW_DEG, START_YAW_DEG)))


@dataclass(frozen=True)
class DemoEpisode:
    """Keyframes (times, action vectors) and the minimum-jerk motion between them."""

    layout: Layout
    variation: Variation
    times: np.ndarray  # (K,) s, increasing, times[0] == 0
    keyframes: np.ndarray  # (K, action_dim) robot units
    phases: tuple[str, ...]  # (K - 1,) the phase of each segment between keyframes

    @property
    def seconds(self) -> float:
        return float(self.times[-1])

    def action_at(self, t: float) -> np.ndarray:
        """The commanded action vector at time t (held at the ends)."""
        k = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2))
        t0, t1 = self.times[k], self.times[k + 1]
        return self.keyframes[k] + (self.keyframes[k + 1] - self.keyframes[k]) * min_jerk((t - t0) / (t1 - t0))

    def phase_at(self, t: float) -> str:
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        return self.phases[int(np.clip(k, 0, len(self.phases) - 1))]

    def sample(self, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, actions) at `rate` Hz over the whole episode."""
        t = np.arange(int(round(self.seconds * rate)) + 1) / rate
        return t, np.stack([self.action_at(float(x)) for x in t])


MIN_JERK_PEAK = 1.875  # a minimum-jerk segment's peak speed over its mean speed


def min_jerk(s: float | np.ndarray) -> float | np.ndarray:
    """0 -> 1 with zero velocity and acceleration at both ends (s clipped to [0, 1])."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def _keyframe(layout: Layout, left_deg: np.ndarray, claw: float, torso: tuple[float, float]) -> np.ndarray:
    channels = {"arm": both_arms(left_deg), "claw": np.full(2, claw), "torso": np.asarray(torso, dtype=np.float64)}
    return layout.action_from_channels({c.channel: channels[c.channel] for c in layout.action})


def start_pose(layout: Layout, yaw_deg: float = 0.0) -> np.ndarray:
    """Home, claws open, torso upright (where every demonstration ends, and the closed loop starts), with both
    shoulders turned by `yaw_deg` (where a demonstration starts)."""
    left = HOME_DEG.copy()
    left[YAW] += yaw_deg
    return _keyframe(layout, left, CLAW_OPEN, TORSO_HOME)


def task_poses(layout: Layout, box_offset: tuple[float, float]) -> dict[str, np.ndarray]:
    """The pose each phase of the task ends in (reach .. rest) for a box at `box_offset` (m)."""
    grasp = grasp_pose_deg(box_offset)
    lift = LIFT_DEG + (grasp - REACH_DEG)
    moved = lift.copy()
    moved[2] = CARRY_YAW_DEG
    home = start_pose(layout)
    return {
        "reach": _keyframe(layout, grasp, CLAW_OPEN, TORSO_BENT),
        "settle": _keyframe(layout, grasp, CLAW_OPEN, TORSO_BENT),
        "close": _keyframe(layout, grasp, CLAW_CLOSED, TORSO_BENT),
        "lift": _keyframe(layout, lift, CLAW_CLOSED, TORSO_HOME),
        "move": _keyframe(layout, moved, CLAW_CLOSED, TORSO_HOME),
        "open": _keyframe(layout, moved, CLAW_OPEN, TORSO_HOME),
        "retreat": home,
        "rest": home,
    }


def make_episode(layout: Layout, seed: int, seconds: float = 12.0,
                 stratum: tuple[int, int] | None = None) -> DemoEpisode:
    """One demonstration of `seconds` (>= MIN_SECONDS), its variation drawn from `seed` (and `stratum`)."""
    if seconds < MIN_SECONDS:
        raise ValueError(f"an episode needs at least {MIN_SECONDS} s, got {seconds}")
    var = Variation.sample(seed, stratum)
    shares = np.array(list(PHASE_SHARE.values())) * np.array(var.phase_scale)
    return _timed(layout, var, start_pose(layout, var.start_yaw_deg), PHASES,
                  dict(task_poses(layout, var.box_offset), hold=start_pose(layout, var.start_yaw_deg)),
                  shares / shares.sum() * (seconds - 2 * HOLD_S))


def recovery_episode(layout: Layout, current: np.ndarray, box_offset: tuple[float, float], holding: bool,
                     seconds: float = 9.0) -> DemoEpisode:
    """The demonstrator taking over mid-task (the demo's DAgger round): from the measured pose `current`, the rest
    of the task for the box where it is now. Holding it, it lifts and carries it on; otherwise it reaches for it
    again with the claws opening on the way (the stand-in counts a grasp on a closing edge at the grasp pose).
    Each phase takes the time it takes in a demonstration of `seconds`, longer where the rate limits need it."""
    phases = PHASES[PHASES.index("lift" if holding else "reach"):]
    moving = phases[:-1]  # every phase but "rest"
    shares = np.array([PHASE_SHARE[p] for p in moving])
    var = Variation(box_offset=tuple(float(v) for v in box_offset), phase_scale=(1.0,) * len(moving))
    return _timed(layout, var, np.asarray(current, dtype=np.float64), phases, task_poses(layout, box_offset),
                  shares / sum(PHASE_SHARE.values()) * (seconds - 2 * HOLD_S))


def _timed(layout: Layout, var: Variation, first: np.ndarray, phases: tuple[str, ...], poses: dict[str, np.ndarray],
           planned: np.ndarray) -> DemoEpisode:
    """Keyframes `first`, then the pose each of `phases` ends in; the moving phases (all but the first "hold"
    and the last "rest", which take HOLD_S) take `planned` seconds, fitted to the node's rate limits; checked
    against its envelope."""
    keyframes = np.stack([first] + [poses[p] for p in phases])
    lead = 1 if phases[0] == "hold" else 0
    moving = _fit_durations(planned, _shortest_durations(layout, keyframes[lead:-1]))
    durations = [HOLD_S] * lead + [*moving, HOLD_S]
    episode = DemoEpisode(layout=layout, variation=var, times=np.concatenate([[0.0], np.cumsum(durations)]),
                          keyframes=keyframes, phases=phases)
    problems = envelope_problems(episode)
    if problems:
        raise ValueError("the demonstration leaves the node's safety envelope:\n  " + "\n  ".join(problems))
    return episode


def _shortest_durations(layout: Layout, poses: np.ndarray) -> np.ndarray:
    """The shortest time each minimum-jerk segment between consecutive `poses` may take within the node's rate
    limits (its peak speed is MIN_JERK_PEAK x the mean), with 2 % to spare."""
    speed = np.array([lim.max_step for lim in dimension_limits(layout, SafetyConfig(), tick_dt=1.0)])
    return 1.02 * MIN_JERK_PEAK * np.max(np.abs(np.diff(poses, axis=0)) / speed, axis=1)


def _fit_durations(planned: np.ndarray, shortest: np.ndarray) -> np.ndarray:
    """`planned` segment durations with any segment shorter than `shortest` lengthened to it and the others
    shrunk in proportion, the total kept (a long reach from a turned start pose takes its time from the rest)."""
    total, fitted = planned.sum(), planned.copy()
    for _ in range(len(planned)):
        short = fitted < shortest
        if not short.any():
            break
        fitted = np.where(short, shortest, fitted * (total - shortest[short].sum()) / fitted[~short].sum())
    return fitted


def envelope_problems(episode: DemoEpisode, safety: SafetyConfig = SafetyConfig()) -> list[str]:
    """Keyframes outside the position limits, segments faster than the rate limits (at their peak)."""
    limits = dimension_limits(episode.layout, safety, tick_dt=1.0)  # max_step per second
    names = episode.layout.action_names
    problems = []
    for k, pose in enumerate(episode.keyframes):
        for name, value, lim in zip(names, pose, limits):
            if not lim.lower - 1e-9 <= value <= lim.upper + 1e-9:
                where = episode.phases[k - 1] if k else "start"
                problems.append(f"{where}: {name} = {value:.4f} outside {lim.limit_text}")
    peak = MIN_JERK_PEAK * np.abs(np.diff(episode.keyframes, axis=0)) / np.diff(episode.times)[:, None]
    for k, row in enumerate(peak):
        for name, speed, lim in zip(names, row, limits):
            if speed > lim.max_step:
                problems.append(f"{episode.phases[k]}: {name} peaks at {speed:.3f}/s ({lim.rate_text})")
    return problems
