"""replay-episode on the robot (or the stand-in): an episode's recorded actions through the node's command path.

The same pieces as the policy node: the measured pose from an ObservationStore fed by the layout's sensor
topics, ros/commander.py (start-up sequence to the episode's first action, the control-rate stream, exit steps
that restore the arm mode and read it back), the node's backend, resampling and safety envelope. A dry run
(the default) subscribes and plans but sends nothing and switches no mode.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rospy

from groot_ros.core.layout import load_layout
from groot_ros.core.store import ObservationStore
from groot_ros.execution.config import load_execution_settings
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.ros.commander import Commander, Interrupted, nominal_height
from groot_ros.ros.subscribers import subscribe_store
from groot_ros.tools.episodes import load_episode
from groot_ros.tools.replay_plan import FollowLog, ReplayReport, component_errors, episode_trajectory, planned_commands


@dataclass(frozen=True)
class ReplayOptions:
    dataset_root: Path
    episode: int = 0
    dry_run: bool = True
    layout: str = "depalletize"
    robot: str = "4_pro"
    topics: str = "real"
    backend: str = "topics"
    direct_to_wbc: bool = False
    execution_config: str | None = None  # config/execution.yaml by default (safety, startup sections)
    execution_overrides: dict | None = None  # section -> keys, as the node's ~execution params
    nominal_height: float | None = None  # default: /com_height
    pose_timeout_s: float = 10.0  # wait this long for the measured pose


class ReplayError(RuntimeError):
    """The replay cannot start (no measured pose, a bad episode); nothing was commanded."""


def replay_episode(options: ReplayOptions) -> ReplayReport:
    """Runs in this process's own rospy node (init_node with signals left to us: Ctrl-C and SIGTERM end the
    stream and still run the exit steps while the master lives)."""
    layout = load_layout(options.layout, options.robot, options.topics)
    settings = load_execution_settings(options.execution_config, options.execution_overrides)
    episode = load_episode(options.dataset_root, options.episode)
    trajectory = episode_trajectory(episode, layout)
    if not rospy.core.is_initialized():
        rospy.init_node("groot_replay", anonymous=True, disable_signals=True)
    store = ObservationStore(layout)
    subs = subscribe_store(store, streams_only=True)
    height = nominal_height(options.nominal_height)
    try:
        measured = _wait_for_pose(store, height, options.pose_timeout_s)
        if options.dry_run:
            return _dry_run(options, layout, settings, episode, trajectory, measured)
        return _live(options, layout, settings, episode, trajectory, store, height)
    finally:
        for sub in subs:
            sub.unregister()


def _wait_for_pose(store: ObservationStore, height: float, timeout: float) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while True:
        pose, problem = store.measured_action(height)
        if pose is not None and np.isfinite(pose).all():
            return pose
        if time.monotonic() > deadline or rospy.is_shutdown():
            raise ReplayError(f"no valid measured pose within {timeout:g} s ({problem or 'non-finite values'}): "
                              f"is the robot (or the stand-in) publishing {', '.join(sorted(store.sources))}?")
        time.sleep(0.05)


def _dry_run(options, layout, settings, episode, trajectory, measured) -> ReplayReport:
    """The command stream the live replay would send after its start-up move (which ends at the first action)."""
    envelope = SafetyEnvelope(layout, settings.safety, settings.execution.control_rate)
    envelope.reset(trajectory.values[0])
    planned = planned_commands(trajectory, envelope, settings.execution.tick_dt)
    recorded = trajectory.sample(trajectory.tick_times(settings.execution.tick_dt))
    distance = np.degrees(np.abs(layout.channel_values(trajectory.values[0] - measured)["arm"]).max())
    return _report(options, episode, True, len(planned), component_errors(layout, planned, recorded), [], envelope,
                   f"start pose {distance:.1f} deg from the measured arms (largest joint); nothing commanded, "
                   "arm modes untouched", None)


def _live(options, layout, settings, episode, trajectory, store, height) -> ReplayReport:
    from groot_ros.ros.backends.config import load_backend_config
    from groot_ros.ros.backends.factory import make_backend
    from groot_ros.ros.compat import MessageVersionError, check_message_versions

    try:  # the services are called in the robot's message version (before anything moves)
        for line in check_message_versions(layout, commanding=True, sdk=options.backend == "sdk"):
            rospy.loginfo("groot_ros: messages %s", line)
    except MessageVersionError as exc:
        raise ReplayError(str(exc)) from exc
    backend = make_backend(options.backend, layout, load_backend_config(direct_to_wbc=options.direct_to_wbc))
    commander = Commander(layout, settings, backend, lambda: store.measured_action(height), rospy.is_shutdown)
    log = FollowLog()
    envelope = None
    interrupted = ""
    failure: Exception | None = None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        envelope = commander.startup(trajectory.values[0])
        if envelope is None:  # start-up disabled: the stream starts from wherever the robot stands
            envelope = commander.envelope(commander.require_pose("the replay"))
        rospy.loginfo("groot_ros: replaying episode %d (%d frames at %g fps)", episode.index, len(episode.actions),
                      episode.fps)
        commander.play(trajectory, envelope, log.add)
    except (KeyboardInterrupt, Interrupted) as exc:
        interrupted = f"interrupted ({exc or type(exc).__name__}) after {len(log.times)} commands; "
    except Exception as exc:  # noqa: BLE001 - a failed start-up step: restore first, then say which
        failure = exc
    finally:
        lines, restored = commander.exit_steps(envelope)
        signal.signal(signal.SIGTERM, previous)
    if failure is not None:
        raise ReplayError(f"{type(failure).__name__}: {failure}; {'; '.join(lines)}") from failure
    ticks = len(log.times)
    commanded = np.array(log.commanded).reshape(ticks, layout.action_dim)
    measured = np.array(log.measured).reshape(ticks, layout.action_dim)
    recorded = trajectory.sample(np.array(log.times)).reshape(ticks, layout.action_dim)
    return _report(options, episode, False, ticks, component_errors(layout, commanded, recorded),
                   component_errors(layout, commanded, measured), envelope, interrupted + "; ".join(lines), restored)


def _raise_interrupt(_signum, _frame):
    raise KeyboardInterrupt("SIGTERM")


def _report(options, episode, dry_run, ticks, envelope_errors, follow, envelope, exit_text, restored) -> ReplayReport:
    return ReplayReport(
        dataset=str(options.dataset_root), episode=episode.index, frames=len(episode.actions), fps=episode.fps,
        dry_run=dry_run, ticks=ticks, envelope=envelope_errors, follow=follow,
        clamps=envelope.clamp_counts() if envelope is not None else {},
        clamp_summary=envelope.summary() if envelope is not None else "", exit=exit_text, restored=restored)
