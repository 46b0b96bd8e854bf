"""`make demo`: record -> dataset -> train -> evaluate -> deploy in closed loop -> report, offline on a CPU.

Every stage writes into one work folder and leaves a stamp (its settings, its upstream stages' content digests,
its own output's digest); a re-run skips a stage whose stamp still matches and says so. The report compares the trained tiny model with the untrained one on a held-out episode
and shows the node driving the stand-in sim with the trained checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import yaml

from groot_ros.core.layout import Layout, load_layout
from groot_ros.core.observation import DEFAULT_TASK
from groot_ros.core.paths import package_root
from groot_ros.demo.dagger import CHECKPOINT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("artifacts/demo")
    episodes: int = 16  # recorded; the last one is held out (15 box positions to learn the reach from)
    episode_seconds: float = 9.0
    train_steps: int = 2500
    batch_size: int = 8
    head_width: int = 64  # the tiny action head's DiT width: 64 learns far more than 32 in the same time
    closed_loop_episodes: int = 5  # per policy, each with a box position not seen in training
    closed_loop_seconds: float = 12.0  # per episode at most (it ends when the box is placed)
    seed: int = 0
    task: str = DEFAULT_TASK
    sim_loop_boxes: int = 0  # > 0: also run the sim-loop blends x latencies table on the trained checkpoint (about
    # 0.5 s per box and cell); 0: the report shows the committed table (docs/rtc_sim_loop.json)
    dagger: bool = False  # also one DAgger round (demo/dagger.py): collect with takeovers, aggregate, retrain
    dagger_boxes: int = 10  # new boxes the trained policy (and the demonstrator, where it fails) runs on
    dagger_eval_boxes: int = 20  # unseen boxes for before / after / hold

    @property
    def held_out(self) -> int:
        return self.episodes - 1


def is_output(path: Path, folder: Path) -> bool:
    """What a stage produced, for its digest: not its stamp, not logs (ROS keeps writing roslog/ while its
    processes wind down, after the stage has finished)."""
    relative = path.relative_to(folder)
    return path.is_file() and path.name != STAMP and path.suffix != ".log" and "roslog" not in relative.parts


def content_digest(folder: Path) -> str:
    """sha256 over every output file's relative path and bytes: what a stage produced."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if is_output(p, folder)):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


STAMP = ".stamp.json"


class Stages:
    """Runs stages once per set of inputs; prints what ran and what was cached, with times.

    A stage's key is its own settings plus the identity of every upstream stage's output: the digest of what it
    wrote and which run wrote it. A stage whose stamp no longer matches its settings or its folder's content
    (edited, partly deleted) runs again; so changing a setting, deleting or editing any stage redoes everything
    downstream of it, and nothing upstream.
    """

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, tuple[float, bool]] = {}

    def identity(self, stage: Path) -> str:
        stamp = json.loads((stage / STAMP).read_text())
        return f"{stamp['output']}@{stamp['run']}"

    def run(self, name: str, inputs: dict, fn: Callable[[Path], Any], upstream: tuple[Path, ...] = ()) -> Path:
        out = self.root / name
        stamp = out / STAMP
        key = json.loads(json.dumps(inputs | {"upstream": {u.name: self.identity(u) for u in upstream}},
                                    sort_keys=True, default=str))
        why = "no earlier run"
        if stamp.exists():
            previous = json.loads(stamp.read_text())
            if previous.get("inputs") != key:
                changed = sorted(k for k in set(key) | set(previous.get("inputs", {}))
                                 if key.get(k) != previous.get("inputs", {}).get(k))
                why = f"changed since the last run: {', '.join(changed)}"
            elif previous.get("output") != content_digest(out):
                why = "its folder's content changed after it was stamped"
            else:
                print(f"[demo] {name}: cached ({out})", flush=True)
                self.timings[name] = (0.0, True)
                return out
        elif out.exists():
            why = "unfinished (no stamp)"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        print(f"[demo] {name}: running ({why}) ...", flush=True)
        t0 = time.perf_counter()
        fn(out)
        elapsed = time.perf_counter() - t0
        stamp.write_text(json.dumps({"inputs": key, "output": content_digest(out), "run": time.time_ns()}, indent=1))
        self.timings[name] = (elapsed, False)
        print(f"[demo] {name}: done in {elapsed:.0f} s", flush=True)
        return out


def record(cfg: DemoConfig, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "groot_ros", "record-demos", "--out", str(out), "--episodes",
                    str(cfg.episodes), "--seconds", str(cfg.episode_seconds), "--seed", str(cfg.seed), "--topics", "sim",
                    "--task", cfg.task], check=True)


def convert(cfg: DemoConfig, bags: Path, out: Path, layout: Layout) -> None:
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert as to_lerobot, find_bags, load_task_map

    all_bags = find_bags([bags])
    if len(all_bags) < 2:
        raise RuntimeError(f"need at least 2 recorded episodes in {bags}, found {len(all_bags)}")
    options = ConvertOptions(task=cfg.task, tasks=load_task_map(bags / "tasks.json"))
    reports = {"train": to_lerobot(all_bags[: cfg.held_out], out / "train", layout, options),
               "held_out": to_lerobot(all_bags[cfg.held_out:], out / "held_out", layout, options)}
    summary = {name: [{"bag": e.bag.name, "frames": e.frames, "skipped": e.skipped} for e in r.outcomes]
               for name, r in reports.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


class LossLog(logging.Handler):
    """Picks LeRobot's training log lines ("step:200 ... loss:0.123 ...") up as (step, loss) pairs.

    LeRobot logs every `log_freq` steps but prints the step rounded ("2K" for 1,500): the n-th line is step
    n * log_freq, which is what we record.
    """

    pattern = re.compile(r"step:(\S+).*?loss:([0-9.eE+-]+)")

    def __init__(self, log_freq: int) -> None:
        super().__init__(logging.INFO)
        self.log_freq = log_freq
        self.points: list[tuple[int, float]] = []

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """LeRobot's init_logging() clears the root logger's handlers: join again right after it ran."""
        import lerobot.scripts.lerobot_train as lerobot_train

        original = lerobot_train.init_logging

        def init_logging_and_join(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            logging.getLogger().addHandler(self)
            return result

        lerobot_train.init_logging = init_logging_and_join
        try:
            yield
        finally:
            lerobot_train.init_logging = original
            logging.getLogger().removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        match = self.pattern.search(record.getMessage())
        if match:
            self.points.append(((len(self.points) + 1) * self.log_freq, float(match.group(2))))


def train(cfg: DemoConfig, dataset: Path, out: Path, layout: Layout) -> None:
    from groot_ros.tools.training import demo_train_options, make_tiny_base_model, train as run_train

    base = make_tiny_base_model(out / "tiny_base", seed=cfg.seed, head_width=cfg.head_width)
    options = demo_train_options(dataset / "train", out / "run", base, steps=cfg.train_steps,
                                 batch_size=cfg.batch_size, seed=cfg.seed)
    losses = LossLog(options.log_freq)
    t0 = time.perf_counter()
    with losses.attached():
        run_train(options, layout)
    last = out / "run" / "checkpoints" / "last" / "training_state" / "training_step.json"
    (out / "loss.json").write_text(json.dumps(losses.points))
    (out / "training.json").write_text(json.dumps({"final_step": json.loads(last.read_text())["step"],
                                                   "seconds": round(time.perf_counter() - t0, 1),
                                                   "log_freq": options.log_freq}))


def evaluate(cfg: DemoConfig, dataset: Path, trained: Path, out: Path, layout: Layout) -> None:
    """The trained checkpoint (with ablations) beside untrained (its base weights back) and hold, held-out episode."""
    from groot_ros.tools.eval_dataset import EvalOptions, evaluate as run_eval
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.tools.training import untrained_runtime

    checkpoint = trained / CHECKPOINT
    options = EvalOptions(episodes=(0,), action_chunk_size=8, variants=("normal", "state-zero", "image-zero"),
                          seed=cfg.seed)
    # the checkpoint carries its base config only; the base weights are the tiny base model it was trained from
    run_eval(GrootRuntime.load(checkpoint, layout), dataset / "held_out", out / "trained", options,
             untrained=untrained_runtime(checkpoint, layout, base_model=trained / "tiny_base" / "base_model"))


def closed_loop(cfg: DemoConfig, data: Path, trained: Path, out: Path, layout: Layout) -> None:
    """Task episodes on the stand-in with unseen box positions: trained, untrained (the node) and hold."""
    import rospy

    from groot_ros.demo.closed_loop import Recorder, eval_boxes, largest_step, node_on_standin, run_episodes, save
    from groot_ros.tools.eval_dataset import open_dataset
    from groot_ros.sim.launcher import SIM_NODE, private_master
    from groot_ros.tools.training import write_untrained_checkpoint

    ckpt = (trained / CHECKPOINT).resolve()
    base = (trained / "tiny_base").resolve()
    checkpoints = {"trained": ckpt, "untrained": write_untrained_checkpoint(ckpt, out / "untrained_checkpoint",
                                                                           base_model=base / "base_model")}
    boxes = eval_boxes(cfg.seed, cfg.closed_loop_episodes)
    slices = layout.action_slices()
    arms = slice(slices["Left_arm"].start, slices["Right_arm"].stop)
    results = {}
    with private_master(out) as env:
        rospy.init_node("groot_demo", anonymous=True, disable_signals=True)
        for policy, checkpoint in checkpoints.items():
            with node_on_standin(checkpoint, base, layout, cfg.task, env,
                                 out / f"launch_{policy}.log") as (launch, backend):
                recorder = Recorder(layout, SIM_NODE)
                results[policy] = run_episodes(policy, boxes, layout, cfg.closed_loop_seconds, backend, recorder,
                                               [launch])
                if policy == "trained":  # hold needs no node: run it on this sim while it is up
                    results["hold"] = run_episodes("hold", boxes, layout, cfg.closed_loop_seconds, backend, recorder,
                                                   [launch])
                recorder.close()
    columns = open_dataset(data / "train").hf_dataset.select_columns(["action", "episode_index"])[:]
    actions, episode = np.asarray(columns["action"]), np.asarray(columns["episode_index"])
    demo_step = max(largest_step(actions[episode == e], arms) for e in np.unique(episode))
    save(out, {p: results[p] for p in ("trained", "untrained", "hold")}, arms, demo_step, sim_blend())


SIM_LOOP_BLENDS = ("none", "crossfade", "lowpass", "rtc")
SIM_LOOP_LATENCIES_S = (0.0, 0.1, 0.3, 0.5)
COMMITTED_BLEND_TABLE = "docs/rtc_sim_loop.json"


def sim_loop(cfg: DemoConfig, trained: Path, out: Path, layout: Layout) -> None:
    """Every blend at every latency on the trained checkpoint, in simulated time (demo/sim_loop.py)."""
    import dataclasses

    from groot_ros.demo.sim_loop import LoopConfig, compare, unseen_boxes
    from groot_ros.execution.config import load_execution_settings
    from groot_ros.policy.loading import load_policy
    from groot_ros.sim.standin_model import load_sim_config

    policy = load_policy(trained / CHECKPOINT, layout, fast=True)
    cells = compare(policy, layout, load_execution_settings(), load_sim_config(), SIM_LOOP_BLENDS,
                    SIM_LOOP_LATENCIES_S, unseen_boxes(cfg.sim_loop_boxes, cfg.seed),
                    LoopConfig(seconds=cfg.closed_loop_seconds, task=cfg.task),
                    progress=lambda row: print(f"[demo] sim-loop {row}", flush=True))
    (out / "cells.json").write_text(json.dumps([dataclasses.asdict(c) for c in cells], indent=1))


def sim_execution_settings() -> Any:
    """What the closed loop's node runs with: config/execution.yaml with sim_depalletize.launch's overrides."""
    from groot_ros.core.paths import config_dir
    from groot_ros.execution.config import load_execution_settings

    sim = yaml.safe_load((config_dir() / "execution_sim.yaml").read_text()) or {}
    return load_execution_settings(None, sim)


def sim_blend() -> str:
    return sim_execution_settings().execution.blend


def run_demo(cfg: DemoConfig) -> Path:
    from groot_ros.demo.report import write_report

    cfg = replace(cfg, out=cfg.out.resolve())  # children (roslaunch) run elsewhere: hand them absolute paths
    layout = load_layout()
    stages = Stages(cfg.out)
    bags = stages.run("1_recordings", {k: getattr(cfg, k) for k in ("episodes", "episode_seconds", "seed", "task")},
                      lambda out: record(cfg, out))
    data = stages.run("2_dataset", {"task": cfg.task, "held_out": cfg.held_out},
                      lambda out: convert(cfg, bags, out, layout), upstream=(bags,))
    model = stages.run("3_training", {"steps": cfg.train_steps, "batch": cfg.batch_size, "seed": cfg.seed,
                                      "head_width": cfg.head_width},
                       lambda out: train(cfg, data, out, layout), upstream=(data,))
    evals = stages.run("4_evaluation", {"seed": cfg.seed},
                       lambda out: evaluate(cfg, data, model, out, layout), upstream=(data, model))
    loop = stages.run("5_closed_loop", {"seconds": cfg.closed_loop_seconds, "episodes": cfg.closed_loop_episodes,
                                        "task": cfg.task, "seed": cfg.seed, "blend": sim_blend()},
                      lambda out: closed_loop(cfg, data, model, out, layout), upstream=(data, model))
    blends = package_root() / COMMITTED_BLEND_TABLE
    if cfg.sim_loop_boxes > 0:
        blends = stages.run("6_sim_loop", {"boxes": cfg.sim_loop_boxes, "seconds": cfg.closed_loop_seconds,
                                           "task": cfg.task, "seed": cfg.seed},
                            lambda out: sim_loop(cfg, model, out, layout), upstream=(model,)) / "cells.json"
    dagger = None
    if cfg.dagger:
        from groot_ros.demo import dagger as round_

        settings = {"boxes": cfg.dagger_boxes, "seconds": cfg.closed_loop_seconds, "task": cfg.task, "seed": cfg.seed,
                    "blend": sim_blend()}
        runs = stages.run("7_dagger_runs", settings, lambda out: round_.collect(cfg, model, out),
                          upstream=(model,))
        retrained = stages.run("8_dagger_training", {"steps": cfg.train_steps, "batch": cfg.batch_size,
                                                     "seed": cfg.seed, "head_width": cfg.head_width},
                               lambda out: train(cfg, round_.aggregate(data, runs, out), out, layout),
                               upstream=(data, runs))
        evaluation = stages.run("9_dagger_evaluation", {"boxes": cfg.dagger_eval_boxes, "seed": cfg.seed,
                                                        "seconds": cfg.closed_loop_seconds, "blend": sim_blend()},
                                lambda out: round_.evaluate(cfg, model, retrained, out, layout,
                                                            sim_execution_settings()),
                                upstream=(model, retrained))
        dagger = (runs, retrained, evaluation)
    report = write_report(cfg, layout, bags, data, model, evals, loop, stages.timings, blends, cfg.sim_loop_boxes > 0,
                          dagger)
    print(f"\n[demo] report: {report}")
    return report
