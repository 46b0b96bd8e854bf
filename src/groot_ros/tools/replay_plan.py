"""replay-episode without ROS: an episode's recorded actions as a trajectory, the command stream the safety
envelope makes of it, and how closely the robot followed (the ROS side is ros/episode_replay.py).

The recorded actions are rows `1/fps` apart, like a model chunk: the node's resampling (execution/resample.py:
arms and torso interpolated, claws held) turns them into control-rate commands, and the node's envelope
(execution/safety.py) limits them. Following is judged per action component in robot units (rad, claw 0..100,
m): at every control tick, the command sent against the pose measured just before it (so it includes one
tick and the controller's own lag).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.execution.resample import Trajectory, chunk_trajectory
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.tools.episodes import Episode, layout_actions


def episode_trajectory(episode: Episode, layout: Layout) -> Trajectory:
    """Row k at k / fps s, every row kept (the node's chunk_trajectory with the whole episode as the window)."""
    actions = layout_actions(episode, layout)
    if not np.isfinite(actions).all():
        rows = sorted({int(r) for r in np.argwhere(~np.isfinite(actions))[:, 0]})
        raise ValueError(f"episode {episode.index} has non-finite actions in frames {rows[:10]}")
    return chunk_trajectory(actions, 0.0, 1.0 / episode.fps, layout.action_interpolation_mask(),
                            range(len(actions)))


def planned_commands(trajectory: Trajectory, envelope: SafetyEnvelope, dt: float) -> np.ndarray:
    """What the robot would be sent, tick by tick, without sending it (the dry run): (N, action_dim)."""
    return np.stack([envelope.apply(trajectory.sample(t)) for t in trajectory.tick_times(dt)])


@dataclass(frozen=True)
class ComponentError:
    name: str
    unit: str
    max: float
    rms: float
    samples: int  # ticks with a finite measurement


def component_errors(layout: Layout, a: np.ndarray, b: np.ndarray) -> list[ComponentError]:
    """Per action component: max and RMS of |a - b| over its dimensions and the rows where both are finite."""
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    out = []
    for comp, sl in zip(layout.action, layout.action_slices().values()):
        diff = a[:, sl] - b[:, sl]
        rows = np.isfinite(diff).all(axis=1)
        d = np.abs(diff[rows])
        unit = comp.units[0] if len(set(comp.units)) == 1 else "/".join(comp.units)
        out.append(ComponentError(comp.name, unit, float(d.max()) if d.size else float("nan"),
                                  float(np.sqrt(np.mean(d ** 2))) if d.size else float("nan"), int(rows.sum())))
    return out


@dataclass
class FollowLog:
    """Commanded vs measured, one row per control tick (filled by the command loop)."""

    times: list[float] = field(default_factory=list)
    commanded: list[np.ndarray] = field(default_factory=list)
    measured: list[np.ndarray] = field(default_factory=list)

    def add(self, t: float, command: np.ndarray, measured: np.ndarray) -> None:
        self.times.append(t)
        self.commanded.append(np.array(command, dtype=np.float64))
        self.measured.append(np.array(measured, dtype=np.float64))


@dataclass(frozen=True)
class ReplayReport:
    dataset: str
    episode: int
    frames: int
    fps: float
    dry_run: bool
    ticks: int
    envelope: list[ComponentError]  # command sent vs the recorded action at the same instant (what limits did)
    follow: list[ComponentError]  # command sent vs measured (empty in a dry run)
    clamps: dict[str, dict[str, int]]  # reason -> dimension -> count (SafetyEnvelope.clamp_counts)
    clamp_summary: str
    exit: str = ""  # the exit steps' report (arm mode restored, read back)
    restored: bool | None = None  # None: dry run (nothing to restore)

    @property
    def clamped(self) -> bool:
        return any(self.clamps.values())

    def summary(self) -> str:
        head = (f"replay-episode: {self.dataset} episode {self.episode}: {self.frames} frames at {self.fps:g} fps -> "
                f"{self.ticks} commands" + (" (DRY RUN: nothing was sent)" if self.dry_run else ""))
        lines = [head]
        for title, errors in (("robot followed (command vs measured)", self.follow),
                              ("envelope changed the recording by (command vs recorded action)", self.envelope)):
            if not errors:
                continue
            lines.append(f"  {title}:")
            for e in errors:
                lines.append(f"    {e.name:<16} max {e.max:9.4f} {e.unit:<6} rms {e.rms:9.4f} {e.unit}"
                             + (f"  (max {np.degrees(e.max):.2f} deg)" if e.unit == "rad" else ""))
        lines.append("  clamped: " + ("yes\n    " + self.clamp_summary.replace("\n", "\n    ")
                                      if self.clamped else "no"))
        if self.exit:
            lines.append(f"  exit: {self.exit}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def errors(items):
            return {e.name: {"unit": e.unit, "max": e.max, "rms": e.rms, "samples": e.samples} for e in items}

        return {"dataset": self.dataset, "episode": self.episode, "frames": self.frames, "fps": self.fps,
                "dry_run": self.dry_run, "ticks": self.ticks, "follow": errors(self.follow),
                "envelope": errors(self.envelope), "clamps": self.clamps, "clamped": self.clamped,
                "exit": self.exit, "restored": self.restored}
