"""`make demo`'s optional DAgger round (`python -m groot_ros demo --dagger`): deploy, correct, aggregate, retrain.

Collect (the real node on the stand-in, as a lab runs it): sim_depalletize.launch with the trained checkpoint and
`record_dir` (the node writes each run as LeRobot episodes, images as PNG like the demo's dataset). Per new box
(seeds neither the recordings nor the evaluation use): approach home, reset the task, ~start. A supervisor watches
the stand-in's task (TakeoverRule); when the policy fails, the policy's attempt is dropped (~pause, ~discard: what
is kept is what the demonstrator shows from the state the policy got into, as in HG-DAgger), the demonstrator takes over
(~takeover) and finishes the task from the measured pose through the robot's command topics
(demonstrator.recovery_episode), and the node records those commands as the actions (intervention frames). ~stop
saves the episode with the stand-in's verdict. A run the policy finishes alone is discarded too: its actions are the
policy's own, not a correction.

Aggregate and retrain: the recordings merged with the training dataset (merge-datasets: LeRobot's aggregation),
then the demo's recipe again, from the same tiny base and seed, on the aggregate (DAgger's step: train on all the
data so far). Evaluate: before, after and hold on unseen boxes in the closed loop without ROS (demo/sim_loop.py:
the stand-in's task, the node's execution core with the sim launch's settings), many boxes in little time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.demo.demonstrator import BOX_LATERAL_M, Variation, recovery_episode, start_pose
from groot_ros.demo.recording import episode_seed
from groot_ros.sim.task import DROPPED, GRASPED, PLACED
from groot_ros.tools.training import LAST_CHECKPOINT

DAGGER_SEED_OFFSET = 2_000_029  # collection boxes come from seeds no recording and no evaluation uses
CHECKPOINT = Path("run") / LAST_CHECKPOINT  # in a demo training stage's folder


def collection_boxes(seed: int, count: int) -> list[tuple[float, float]]:
    return [Variation.sample(episode_seed(seed + DAGGER_SEED_OFFSET, k), lateral_m=BOX_LATERAL_M).box_offset
            for k in range(count)]


@dataclass(frozen=True)
class TakeoverRule:
    """When the demonstrator takes over: the box put down off the conveyor, no grasp by `grasp_by_s` (the
    demonstrations grasp within 4 s), or not placed by `place_by_s` (the closed loop's episode length)."""

    grasp_by_s: float = 6.0
    place_by_s: float = 12.0

    def reason(self, elapsed: float, phase: str, grasped: bool) -> str:
        """Why to take over now ("" to let the policy go on)."""
        if phase == PLACED:
            return ""
        if phase == DROPPED:
            return "put the box down off the conveyor"
        if not grasped and elapsed > self.grasp_by_s:
            return f"no grasp within {self.grasp_by_s:.0f} s"
        if elapsed > self.place_by_s:
            return f"not placed within {self.place_by_s:.0f} s"
        return ""


@dataclass
class RunLog:
    box: tuple[float, float]
    takeover: str = ""  # why the demonstrator took over ("" the policy did the task alone, or ran out of time)
    policy_seconds: float = 0.0  # from ~start to placed or to the takeover
    phase_at_takeover: str = ""
    phase: str = ""  # at the end of the run
    success: bool = False


class SceneWatch:
    """The stand-in's task as its latched topics report it: phase, where the box is, whether it was grasped since
    the last begin()."""

    def __init__(self, sim_node: str) -> None:
        import rospy
        from std_msgs.msg import Float64MultiArray, String

        self._lock = threading.Lock()
        self.phase, self.box, self.grasped = "", (0.0, 0.0), False
        self.subs = [rospy.Subscriber(f"/{sim_node}/task_phase", String, self._on_phase, queue_size=10),
                     rospy.Subscriber(f"/{sim_node}/task_box", Float64MultiArray, self._on_box, queue_size=10)]

    def _on_phase(self, msg: Any) -> None:
        with self._lock:
            self.phase = msg.data
            self.grasped |= msg.data == GRASPED

    def _on_box(self, msg: Any) -> None:
        with self._lock:
            self.box = (float(msg.data[0]), float(msg.data[1]))

    def begin(self) -> None:
        with self._lock:
            self.grasped = False

    def now(self) -> tuple[str, tuple[float, float], bool]:
        with self._lock:
            return self.phase, self.box, self.grasped

    def close(self) -> None:
        for sub in self.subs:
            sub.unregister()


def run_box(box: tuple[float, float], layout: Layout, backend: Any, scene: SceneWatch, rule: TakeoverRule,
            demo_seconds: float, watch: Sequence[Any], rate: float = 100.0) -> RunLog:
    """One trial: the policy from home; on failure the demonstrator's recovery, recorded as intervention frames."""
    from groot_ros.demo.closed_loop import call_node, new_task, start_node
    from groot_ros.demo.recording import _measured_action, drive, task_outcome
    from groot_ros.sim.launcher import check_alive

    new_task(backend, layout, box, rate)
    scene.begin()
    start_node(backend, layout, watch)
    log, t0 = RunLog(box=tuple(box)), time.monotonic()
    while True:
        check_alive(watch, "DAgger trial")
        phase, _box, grasped = scene.now()
        log.takeover = rule.reason(time.monotonic() - t0, phase, grasped)
        if phase == PLACED or log.takeover:
            break
        time.sleep(0.1)
    log.policy_seconds = time.monotonic() - t0
    call_node("pause")  # pauses are not recorded: nothing more of the policy's own run
    call_node("discard")  # the policy's actions teach it nothing new; what is kept is the demonstrator's
    if log.takeover:
        call_node("takeover", True)  # the node commands nothing and records what the command topics carry
        backend.start()
        time.sleep(0.5)  # the demonstrator's publishers reach the stand-in and the node before the first command
        call_node("discard")  # the robot standing still meanwhile is no demonstration either
        phase, where, _ = scene.now()
        log.phase_at_takeover = phase
        recovery = recovery_episode(layout, _measured_action(layout), where, holding=phase == GRASPED,
                                    seconds=demo_seconds)
        drive(backend, layout, recovery.action_at, recovery.seconds, rate)
        deadline = time.monotonic() + 2.0
        while scene.now()[0] != PLACED and time.monotonic() < deadline:
            time.sleep(0.1)
    call_node("stop")  # saves the demonstrator's episode with the stand-in's verdict (nothing after a pause)
    if not log.takeover:
        backend.start()  # publishers again, for the next approach
    log.phase, log.success = task_outcome()
    return log


def collect(cfg: Any, model: Path, out: Path) -> None:
    """The demo stage: `dagger-trials` in a process of its own (rospy joins one master once per process, and the
    demo's closed loop has joined, and stopped, its own)."""
    subprocess.run([sys.executable, "-m", "groot_ros", "dagger-trials", "--model", str(model), "--out", str(out),
                    "--boxes", str(cfg.dagger_boxes), "--seconds", str(cfg.closed_loop_seconds),
                    "--demo-seconds", str(cfg.episode_seconds), "--task", cfg.task, "--seed", str(cfg.seed)],
                   check=True)


def trials(model: Path, out: Path, layout: Layout, boxes: int, seconds: float, demo_seconds: float, task: str,
           seed: int) -> list[RunLog]:
    """The trained policy (a demo training stage's folder: its checkpoint and tiny base) on `boxes` new boxes with
    the node recording into out/recordings; runs.json per trial."""
    import rospy

    from groot_ros.demo.closed_loop import node_on_standin
    from groot_ros.sim.launcher import SIM_NODE, private_master

    checkpoint, base = (model / CHECKPOINT).resolve(), (model / "tiny_base").resolve()
    out = out.resolve()
    rule = TakeoverRule(place_by_s=seconds)
    runs = []
    with private_master(out) as env:
        rospy.init_node("groot_demo_dagger", anonymous=True, disable_signals=True)
        extra = (f"record_dir:={out / 'recordings'}", "record_video:=false")
        with node_on_standin(checkpoint, base, layout, task, env, out / "launch.log", extra) as (launch, backend):
            scene = SceneWatch(SIM_NODE)
            try:
                for box in collection_boxes(seed, boxes):
                    runs.append(run_box(box, layout, backend, scene, rule, demo_seconds, [launch]))
                    r = runs[-1]
                    print(f"[demo] DAgger box {box[0]:+.3f} {box[1]:+.3f} m: "
                          + (f"taken over after {r.policy_seconds:.1f} s ({r.takeover}, {r.phase_at_takeover})"
                             if r.takeover else f"policy alone, {r.policy_seconds:.1f} s") + f" -> {r.phase}",
                          flush=True)
            finally:
                scene.close()
    (out / "runs.json").write_text(json.dumps({"rule": asdict(rule), "runs": [asdict(r) for r in runs]}, indent=1))
    return runs


def aggregate(data: Path, runs: Path, out: Path) -> Path:
    """The recordings merged with the training dataset (out/dataset/train), for the demo's recipe to train on; a
    round without a correction recorded nothing and trains on the training dataset alone."""
    from groot_ros.tools.bag2lerobot import merge_datasets

    target = out / "dataset" / "train"
    if _recorded(runs / "recordings")[0]:
        merge_datasets([data / "train", runs / "recordings"], target)
    else:
        shutil.copytree(data / "train", target)
    return out / "dataset"


class HoldHome:
    """The trivial policy: every chunk holds home, where each episode starts."""

    def __init__(self, layout: Layout) -> None:
        self.chunk = np.tile(start_pose(layout), (layout.chunk_size, 1))

    def predict_chunk(self, obs: Any, seed: int | None = None, prefix: Any = None) -> np.ndarray:
        return self.chunk


def evaluate(cfg: Any, before: Path, after: Path, out: Path, layout: Layout, settings: Any) -> None:
    """before (the demo's trained model), after (retrained on the aggregate) and hold on the same unseen boxes,
    with the execution `settings` the sim launch's node runs."""
    from groot_ros.demo.closed_loop import eval_boxes
    from groot_ros.demo.sim_loop import LoopConfig, run_boxes
    from groot_ros.policy.loading import load_policy
    from groot_ros.sim.standin_model import load_sim_config

    boxes = eval_boxes(cfg.seed, cfg.dagger_eval_boxes)
    loop = LoopConfig(seconds=cfg.closed_loop_seconds, task=cfg.task)
    policies = {"before": lambda: load_policy(before / CHECKPOINT, layout, fast=True),
                "after": lambda: load_policy(after / CHECKPOINT, layout, fast=True),
                "hold": lambda: HoldHome(layout)}
    results = {}
    for name, make in policies.items():
        episodes = run_boxes(make(), layout, settings, load_sim_config(), boxes, loop, cfg.seed)
        results[name] = [{"box": list(e.box), "phase": e.phase, "success": e.success, "seconds": e.seconds}
                         for e in episodes]
        print(f"[demo] DAgger evaluation {name}: {sum(e.success for e in episodes)}/{len(episodes)} placed",
              flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))


def _recorded(recordings: Path) -> tuple[int, int, int]:
    """(episodes, frames, intervention frames) the node wrote."""
    from groot_ros.tools.deployment_recorder import TRIALS_FILE

    if not (recordings / "meta" / "info.json").is_file():
        return 0, 0, 0  # no episode kept
    info = json.loads((recordings / "meta" / "info.json").read_text())
    trials = recordings / TRIALS_FILE
    intervened = sum(json.loads(line).get("intervention_frames", 0)
                     for line in trials.read_text().splitlines() if line.strip()) if trials.exists() else 0
    return int(info["total_episodes"]), int(info["total_frames"]), intervened


def section(runs: Path, retrained: Path, evaluation: Path) -> tuple[list[str], dict]:
    """The report's DAgger section and its numbers for summary.json."""
    collected = json.loads((runs / "runs.json").read_text())
    trials, rule = collected["runs"], collected["rule"]
    episodes, frames, intervened = _recorded(runs / "recordings")
    results = json.loads((evaluation / "results.json").read_text())
    success = {name: sum(e["success"] for e in eps) for name, eps in results.items()}
    count = len(next(iter(results.values())))
    taken = [t for t in trials if t["takeover"]]
    lines = ["## One DAgger round (`--dagger`)", "",
             f"The trained policy ran on {len(trials)} new boxes with the node recording (`record_dir`). The scripted "
             f"demonstrator took over {len(taken)} time(s) (rule: the box put down off the conveyor, no grasp within "
             f"{rule['grasp_by_s']:.0f} s, not placed within {rule['place_by_s']:.0f} s): the policy's attempt was "
             "discarded (`~discard`), the node handed over (`~takeover`) and recorded the demonstrator's commands "
             "from the command topics as the actions. Runs the policy finished alone were discarded (its own "
             "actions). The recordings were merged with the training dataset and the same recipe trained again on "
             "the aggregate.", "",
             "| box (m) | policy | demonstrator | outcome |", "|---|---|---|---|"]
    for t in trials:
        lines.append(f"| {t['box'][0]:+.3f}, {t['box'][1]:+.3f} | "
                     + (f"taken over after {t['policy_seconds']:.1f} s: {t['takeover']} ({t['phase_at_takeover']})"
                        if t["takeover"] else f"alone, {t['policy_seconds']:.1f} s")
                     + f" | {'recovery' if t['takeover'] else '-'} | {t['phase']} |")
    lines += ["", f"Recorded: {episodes} episodes, {frames} frames, {intervened} of them the demonstrator's.", "",
              f"Task success on {count} unseen boxes (the closed loop without ROS, `sim-loop`'s, with the sim "
              "launch's execution settings), before and after the round:", "",
              "| policy | task success |", "|---|---|"]
    lines += [f"| {name} | **{success[name]}/{count}** |" for name in results]
    info = json.loads((retrained / "training.json").read_text())
    lines += ["", f"Retraining on the aggregate: {info['final_step']} steps in {info['seconds']:.0f} s. This is one "
                  f"round with {len(taken)} correction(s) ({intervened} frames): what it changed here, not a trend; "
                  "telling a gain from the spread of retraining takes several rounds and retrainings.", ""]
    figures = {"boxes": len(trials), "takeovers": len(taken), "episodes": episodes, "frames": frames,
               "intervention_frames": intervened, "eval_boxes": count, "success": success}
    return lines, figures
