"""The demo's closed loop: task episodes on the stand-in with box positions not seen in training, scored by the
stand-in's task (sim/task.py) for the trained model, the untrained one and "hold".

One launch of sim_depalletize.launch per model (the policy node starts paused). Each episode: the arms move to
home, where the demonstrations end (they start with the shoulders turned around it), by the recorder's
minimum-jerk approach through the topics backend; the task is reset with the episode's box, the node is started
(~start: it ramps from the measured pose) and runs until the box is placed or the time is up, then stopped
(~stop). "hold" is the same episode with home held (no node). Recorded per episode: the measured arms and
claws, the task's phase, every chunk the node published and its status (clamps). ROS at the edges; the numbers
come from the plain functions below.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.demo.demonstrator import BOX_LATERAL_M, Variation, start_pose
from groot_ros.demo.recording import APPROACH_S, approach, drive, episode_seed, reset_task
from groot_ros.sim.task import PLACED

EVAL_SEED_OFFSET = 1_000_003  # evaluation boxes come from seeds no recording uses
POLICIES = ("trained", "untrained", "hold")


def eval_boxes(seed: int, count: int) -> list[tuple[float, float]]:
    """Box offsets for the closed-loop episodes: uniform over +-BOX_LATERAL_M (inside the demonstrations' wider
    range), from seeds no recording uses."""
    return [Variation.sample(episode_seed(seed + EVAL_SEED_OFFSET, k), lateral_m=BOX_LATERAL_M).box_offset
            for k in range(count)]


def chunk_boundary_steps(chunks: Sequence[tuple], dims: slice) -> np.ndarray:
    """How far each new chunk is from the previous chunk's plan at the moment it takes over (max over `dims`).

    chunks: (observation time, row spacing, rows x dims[, latency]) in arrival order; the chunk takes over at its
    observation time + latency (0 when not given), where both chunks are interpolated between rows. That jump is
    what the node's blending has to absorb; with real-time chunking the rows before the takeover are the plan's by
    construction, so the step is measured there and not at the observation time.
    """
    def at(t0: float, dt: float, rows: np.ndarray, t: float) -> np.ndarray | None:
        x = (t - t0) / dt
        if x < 0 or x > len(rows) - 1:
            return None
        k = min(int(x), len(rows) - 2)
        return rows[k] + (rows[k + 1] - rows[k]) * (x - k)

    steps = []
    for old, new in zip(chunks, chunks[1:]):
        takeover = new[0] + (new[3] if len(new) > 3 else 0.0)
        planned, starts = at(*old[:3], takeover), at(*new[:3], takeover)
        if planned is not None and starts is not None:
            steps.append(float(np.max(np.abs(starts[dims] - planned[dims]))))
    return np.asarray(steps)


def largest_step(actions: np.ndarray, dims: slice) -> float:
    """The demonstrations' largest change between consecutive frames (max over `dims`)."""
    return float(np.max(np.abs(np.diff(actions[:, dims], axis=0))))


@dataclass
class EpisodeLog:
    """What one episode produced (times in s from the episode's start)."""

    policy: str
    box: tuple[float, float]
    seconds: float = 0.0
    phase: str = "on_pallet"
    success: bool = False
    t: list = None  # measured arm samples
    arm: list = None
    claw_t: list = None
    claw: list = None
    phases: list = None  # (t, phase) on change
    chunks: list = None  # (observation time from start, row spacing, rows, inference latency)
    clamps: int = 0

    def __post_init__(self) -> None:
        for name in ("t", "arm", "claw_t", "claw", "phases", "chunks"):
            if getattr(self, name) is None:
                setattr(self, name, [])

    def to_json(self, arm_dims: slice) -> dict:
        steps = chunk_boundary_steps(self.chunks, arm_dims)
        return {"policy": self.policy, "box": list(self.box), "seconds": round(self.seconds, 2), "phase": self.phase,
                "success": self.success, "phases": self.phases, "clamps": self.clamps,
                "clamps_per_s": self.clamps / self.seconds if self.seconds else 0.0, "chunks": len(self.chunks),
                "boundary_steps": steps.tolist(), "t": self.t, "arm": self.arm, "claw_t": self.claw_t,
                "claw": self.claw}


class Recorder:
    """Subscribes once; fills the current EpisodeLog (or none) from the callbacks."""

    def __init__(self, layout: Layout, sim_node: str) -> None:
        import rospy
        from std_msgs.msg import String

        from groot_ros.core.layout import read_field
        from groot_ros.msg import ActionChunk, PolicyStatus
        from groot_ros.ros.messages import message_class

        self.log: EpisodeLog | None = None
        self.t0 = 0.0
        self._lock = threading.Lock()
        self._n = 0
        joints = next(c for c in layout.state if c.stream == "joints")
        claws = next(c for c in layout.state if c.stream == "claws")

        def on_joints(msg: Any) -> None:
            self._n += 1
            if self._n % 10 == 0:  # 20 Hz of the sim's 200 Hz is plenty for a plot
                q = np.asarray(read_field(msg, joints.field))[list(joints.indices)]
                self._add(lambda log, t: (log.t.append(t), log.arm.append(q.tolist())))

        def on_claws(msg: Any) -> None:
            value = np.asarray(read_field(msg, claws.field))[list(claws.indices)]
            self._add(lambda log, t: (log.claw_t.append(t), log.claw.append(value.tolist())))

        def on_phase(msg: Any) -> None:
            self._add(lambda log, t: log.phases.append((t, msg.data)) if not log.phases or log.phases[-1][1] != msg.data
                      else None)

        def on_chunk(msg: Any) -> None:
            rows = np.asarray(msg.data).reshape(msg.steps, msg.dims)
            self._add(lambda log, _t: log.chunks.append((msg.observation_stamp.to_sec() - self.t0, msg.step_dt, rows,
                                                         msg.inference_latency)))

        def on_status(msg: Any) -> None:  # the count restarts with every ~start; stopped/idle: the last run's
            if msg.state not in ("stopped", "idle"):
                self._add(lambda log, _t: setattr(log, "clamps", int(msg.clamps)))

        streams = layout.streams
        self.subs = [
            rospy.Subscriber(streams[joints.stream].topic, message_class(streams[joints.stream].msg_type), on_joints,
                             queue_size=50),
            rospy.Subscriber(streams[claws.stream].topic, message_class(streams[claws.stream].msg_type), on_claws,
                             queue_size=50),
            rospy.Subscriber(f"/{sim_node}/task_phase", String, on_phase, queue_size=10),
            rospy.Subscriber("/groot_policy/action_chunk", ActionChunk, on_chunk, queue_size=10),
            rospy.Subscriber("/groot_policy/status", PolicyStatus, on_status, queue_size=10),
        ]

    def _add(self, fn: Any) -> None:
        import rospy

        with self._lock:
            if self.log is not None:
                fn(self.log, rospy.get_time() - self.t0)

    def begin(self, log: EpisodeLog) -> None:
        import rospy

        with self._lock:
            self.t0 = rospy.get_time()
            self.log = log

    def end(self) -> EpisodeLog:
        with self._lock:
            log, self.log = self.log, None
        return log

    def close(self) -> None:
        for sub in self.subs:
            sub.unregister()


@contextlib.contextmanager
def node_on_standin(checkpoint: Path, base: Path, layout: Layout, task: str, env: dict, log: Path,
                    extra: Sequence[str] = ()) -> Iterator[tuple[Any, Any]]:
    """sim_depalletize.launch with `checkpoint` (the policy node paused) on the private master `env`, once the node
    reports status and the stand-in serves its arm mode; yields (the launch, a started topics backend for this
    process's own commands). The backend lets go of its topics and the launch is stopped on exit."""
    import rospy

    from groot_ros.msg import PolicyStatus
    from groot_ros.ros.backends.factory import make_backend
    from groot_ros.sim.launcher import roslaunch, service_up, stop, wait_until

    launch = roslaunch(["groot_ros", "sim_depalletize.launch", f"checkpoint:={checkpoint}", f"task:={task}",
                        "start_paused:=true", f"base_config:={base / 'base_model' / 'config.json'}",
                        f"eagle_assets:={base / 'eagle_assets'}", *extra], env, log)
    backend = None
    try:
        statuses: list = []
        sub = rospy.Subscriber("/groot_policy/status", PolicyStatus, statuses.append, queue_size=5)
        wait_until(lambda: statuses, 300, "status from the policy node", [launch])
        sub.unregister()
        wait_until(lambda: service_up("/arm_traj_change_mode"), 60, "the stand-in's arm-mode service", [launch])
        backend = make_backend("topics", layout)
        backend.start()
        yield launch, backend
    finally:
        if backend is not None:
            backend.shutdown()
            backend.disconnect()  # rospy keeps a topic registered while any publisher of it lives
        stop(launch.proc)


NODE = "/groot_policy"


def call_node(service: str, *args: Any) -> str:
    """One of the policy node's services (Trigger, or SetBool given its argument); a refusal raises naming it."""
    import rospy
    from std_srvs.srv import SetBool, Trigger

    name = f"{NODE}/{service}"
    rospy.wait_for_service(name, timeout=30)
    reply = rospy.ServiceProxy(name, SetBool if args else Trigger)(*args)
    if not reply.success:
        raise RuntimeError(f"{name}: {reply.message}")
    return reply.message


def new_task(backend: Any, layout: Layout, box: tuple[float, float], rate: float) -> None:
    """The arms to home by the minimum-jerk approach, then a new task with the box at `box`."""
    drive(backend, layout, approach(layout, start_pose(layout)), APPROACH_S + 0.5, rate)
    reset_task(box)


def start_node(backend: Any, layout: Layout, watch: Sequence[Any]) -> None:
    """~start once this process has let go of the command topics (one commander per robot)."""
    from groot_ros.ros.commander import other_commanders
    from groot_ros.sim.launcher import wait_until

    backend.disconnect()
    wait_until(lambda: not other_commanders(layout, NODE), 10, "release of the command topics by this process", watch)
    call_node("start")


def run_episodes(policy: str, boxes: Sequence[tuple[float, float]], layout: Layout, seconds: float, backend: Any,
                 recorder: Recorder, watch: Sequence[Any], rate: float = 100.0) -> list[EpisodeLog]:
    """One episode per box: approach the start pose, reset the task, run the node (or hold) until placed."""
    from groot_ros.demo.recording import task_outcome
    from groot_ros.sim.launcher import check_alive

    home = start_pose(layout)
    logs = []
    for box in boxes:
        new_task(backend, layout, box, rate)
        log = EpisodeLog(policy=policy, box=tuple(box))
        recorder.begin(log)
        if policy != "hold":
            start_node(backend, layout, watch)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            check_alive(watch, f"closed-loop episode ({policy})")
            if policy == "hold":
                drive(backend, layout, lambda _t: home, 0.5, rate)
            else:
                time.sleep(0.25)
            if log.phases and log.phases[-1][1] == PLACED:
                break
        log.seconds = time.monotonic() - t0
        if policy != "hold":
            call_node("stop")
            backend.start()  # publishers again, for the next approach
        log.phase, log.success = task_outcome()
        recorder.end()
        logs.append(log)
        print(f"[demo] closed loop {policy}: box {box[0]:+.3f} {box[1]:+.3f} m -> {log.phase} in {log.seconds:.1f} s",
              flush=True)
    return logs


def success_table(results: dict[str, list[dict]]) -> list[str]:
    """Markdown: success per policy, with the episodes' outcomes."""
    rows = ["| policy | task success | outcome per episode |", "|---|---|---|"]
    for policy, episodes in results.items():
        won = sum(e["success"] for e in episodes)
        rows.append(f"| {policy} | **{won}/{len(episodes)}** | "
                    + ", ".join(f"{e['phase']} ({e['seconds']:.0f} s)" for e in episodes) + " |")
    return rows


def save(out: Path, results: dict[str, list[EpisodeLog]], arm_dims: slice, demo_largest_step: float,
         blend: str) -> dict:
    data = {"demo_largest_step": demo_largest_step, "blend": blend,
            "policies": {p: [log.to_json(arm_dims) for log in logs] for p, logs in results.items()}}
    (out / "episodes.json").write_text(json.dumps(data))
    return data
