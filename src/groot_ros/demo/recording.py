"""`python -m groot_ros record-demos`: scripted demonstrations on the stand-in sim, one rosbag per episode.

The demonstrator (src/groot_ros/demonstrator.py) is driven through the `topics` command backend at the
control rate, exactly as the policy node commands the robot, and `rosbag record` keeps the layout's sensor,
camera and command topics (bag2lerobot.sources: what a dataset episode needs, nothing else). Before each
episode the arms move (unrecorded) to the episode's start pose, so every bag starts still, and the stand-in's
task is reset with the episode's box on the pallet; after it, the task's phase and success are noted (the
demonstrator places every box: a failure there means the scene and the demonstrator disagree).

Next to the bags: `tasks.json`, the bag -> task map that `bag2lerobot --task-map` reads, and
`episodes.json` with each episode's seed, box offset and phase times (for people and tests).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from groot_ros.demo.demonstrator import DemoEpisode, make_episode, min_jerk
from groot_ros.core.layout import Layout, load_layout
from groot_ros.execution.pacer import Pacer
from groot_ros.sim.launcher import SIM_NODE, running_sim, service_up, stop, wait_until

RECORDER_NODE = "groot_demo_bag"
APPROACH_S = 1.2  # unrecorded move from wherever the arms are to the episode's start pose (<= 0.9 rad/s peak)
TASKS_FILE, EPISODES_FILE = "tasks.json", "episodes.json"


class RecordError(RuntimeError):
    """Recording cannot go on; the message says why."""


@dataclass(frozen=True)
class RecordOptions:
    out: Path
    episodes: int
    seconds: float
    task: str
    seed: int = 0
    layout: str = "depalletize"
    robot: str = "4_pro"
    topics: str = "sim"
    image_size: tuple[int, int] | None = None  # None: config/sim.yaml's
    rate: float = 100.0  # Hz, commands
    master_uri: str | None = None  # None: a private roscore on a free port
    sim_overrides: dict = field(default_factory=dict)  # more config/sim.yaml keys


def bag_name(index: int) -> str:
    return f"episode_{index:03d}.bag"


def episode_seed(seed: int, index: int) -> int:
    """Distinct, reproducible per-episode seeds (episode k of a run does not depend on how many were asked for)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def record(options: RecordOptions, log: Callable[[str], None] = print) -> list[Path]:
    """Records options.episodes bags into options.out; returns their paths."""
    layout = load_layout(options.layout, options.robot, options.topics)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("episode_*.bag"))
    if existing:
        raise RecordError(f"{out} already holds {len(existing)} episode bags: choose a new --out or delete them")
    # Box offsets spread evenly over their range, in a shuffled order (so the held-out last one is anywhere).
    order = np.random.default_rng(options.seed).permutation(options.episodes)
    episodes = [make_episode(layout, episode_seed(options.seed, i), options.seconds, (int(order[i]), options.episodes))
                for i in range(options.episodes)]
    overrides = dict(options.sim_overrides)
    if options.image_size is not None:
        overrides["image_size"] = list(options.image_size)
    with tempfile.TemporaryDirectory(prefix="groot_record_") as work, \
            running_sim(Path(work), options.topics, options.layout, overrides, options.master_uri) as procs:
        import rospy

        from groot_ros.ros.backends.factory import make_backend

        rospy.init_node("groot_record_demos", anonymous=True, disable_signals=True)
        wait_until(lambda: service_up("/arm_traj_change_mode"), 60, "the stand-in's arm-mode service",
                   [procs.watched])
        backend = make_backend("topics", layout)
        backend.start()
        paths, meta = [], []
        try:
            for i, episode in enumerate(episodes):
                path = out / bag_name(i)
                drive(backend, layout, approach(layout, episode.action_at(0.0)), APPROACH_S, options.rate)
                reset_task(episode.variation.box_offset)
                recorder = _start_recorder(path, layout, procs.env, Path(work))
                try:
                    drive(backend, layout, episode.action_at, episode.seconds, options.rate)
                finally:
                    stop(recorder)
                if not bag_closed(path):
                    raise RecordError(f"rosbag record did not write {path} (see {work}/rosbag_{path.stem}.log)")
                phase, success = task_outcome()
                paths.append(path)
                meta.append({**_episode_meta(path, episode, episode_seed(options.seed, i), options.task),
                             "task_phase": phase, "task_success": success})
                log(f"[record-demos] {path} ({episode.seconds:.1f} s, box offset "
                    f"{episode.variation.box_offset[0]:+.3f} m lateral, {episode.variation.box_offset[1]:+.3f} m forward, "
                    f"task {phase}{'' if success else ' (NOT placed)'}, {path.stat().st_size / 1e6:.2f} MB)")
        finally:
            backend.shutdown()
            rospy.signal_shutdown("record-demos done")
    (out / TASKS_FILE).write_text(json.dumps({m["bag"]: m["task"] for m in meta}, indent=2) + "\n")
    (out / EPISODES_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return paths


def _episode_meta(path: Path, episode: DemoEpisode, seed: int, task: str) -> dict:
    return {"bag": path.name, "task": task, "seed": seed, "seconds": episode.seconds,
            "box_offset_m": list(episode.variation.box_offset),
            "phases": [{"phase": p, "start_s": round(float(t0), 3), "end_s": round(float(t1), 3)}
                       for p, t0, t1 in zip(episode.phases, episode.times[:-1], episode.times[1:])]}


def reset_task(box_offset: tuple[float, float]) -> None:
    """A new task episode on the running stand-in: its box on the pallet at `box_offset` (m)."""
    import rospy
    from std_srvs.srv import Trigger

    rospy.set_param(f"/{SIM_NODE}/box_offset", [float(v) for v in box_offset])
    rospy.wait_for_service(f"/{SIM_NODE}/reset_task", timeout=10)
    rospy.ServiceProxy(f"/{SIM_NODE}/reset_task", Trigger)()


def task_outcome(timeout: float = 5.0) -> tuple[str, bool]:
    """The stand-in's task phase and success now (its latched topics)."""
    import rospy
    from std_msgs.msg import Bool, String

    phase = rospy.wait_for_message(f"/{SIM_NODE}/task_phase", String, timeout=timeout).data
    return phase, bool(rospy.wait_for_message(f"/{SIM_NODE}/task_success", Bool, timeout=timeout).data)


def _measured_action(layout: Layout) -> np.ndarray:
    """The robot's current pose in action space, from one message of each state stream."""
    import rospy

    from groot_ros.ros.messages import message_class

    messages = {name: rospy.wait_for_message(layout.streams[name].topic, message_class(layout.streams[name].msg_type),
                                             timeout=10)
                for name in layout.used_streams()}
    state = layout.state_from_messages(messages)
    return layout.measured_action(state, float(rospy.get_param("/com_height", 0.0)))


def approach(layout: Layout, goal: np.ndarray) -> Callable[[float], np.ndarray]:
    """Minimum-jerk from the measured pose to `goal` in APPROACH_S (then held)."""
    start = _measured_action(layout)
    return lambda t: start + (goal - start) * min_jerk(t / APPROACH_S)


def drive(backend, layout: Layout, action_at: Callable[[float], np.ndarray], seconds: float, rate: float) -> None:
    """Sends action_at(t) for t in [0, seconds] at `rate` Hz, paced by execution/pacer.py (no catch-up bursts)."""
    pacer = Pacer(1.0 / rate)
    t0 = pacer.wait()
    while True:
        t = time.monotonic() - t0
        backend.send(layout.channel_values(action_at(min(t, seconds))))
        if t >= seconds:
            return
        pacer.wait()


def bag_closed(path: Path, timeout: float = 15.0) -> bool:
    """rosbag's wrapper exits before its recorder child has closed the file (renamed .bag.active -> .bag)."""
    deadline = time.monotonic() + timeout
    active = path.with_name(path.name + ".active")
    while time.monotonic() < deadline:
        if path.exists() and not active.exists():
            return True
        time.sleep(0.1)
    return False


def _start_recorder(path: Path, layout: Layout, env, work: Path, timeout: float = 20.0) -> subprocess.Popen:
    """`rosbag record` of the episode's topics; returns once it is subscribed to all of them."""
    import rosgraph

    from groot_ros.tools.bag2lerobot import sources

    topics = list(dict.fromkeys(s.topic for s in sources(layout)))
    with open(work / f"rosbag_{path.stem}.log", "w") as log:
        proc = subprocess.Popen(["rosbag", "record", "--lz4", "-O", str(path), f"__name:={RECORDER_NODE}", *topics],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    master = rosgraph.Master("/groot_record_demos")
    deadline = time.monotonic() + timeout
    while True:
        _pubs, subs, _srvs = master.getSystemState()
        subscribed = {topic for topic, nodes in subs if f"/{RECORDER_NODE}" in nodes}
        if subscribed >= set(topics):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RecordError(f"rosbag record did not subscribe to {sorted(set(topics) - subscribed)}")
        time.sleep(0.1)
    time.sleep(0.5)  # subscribed is not yet connected: let the publishers' connections come up
    return proc
