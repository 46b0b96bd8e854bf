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

from groot_ros.core.layout import Layout, load_layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("artifacts/demo")
    episodes: int = 6  # recorded; the last one is held out
    episode_seconds: float = 12.0
    train_steps: int = 1500
    batch_size: int = 8
    closed_loop_seconds: float = 20.0
    seed: int = 0
    task: str = "Depalletize the boxes: pick the top box and place it on the conveyor."

    @property
    def held_out(self) -> int:
        return self.episodes - 1


def content_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (the stamp itself excluded): what a stage produced."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STAMP):
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
    """Picks LeRobot's training log lines ("step:200 ... loss:0.123 ...") up as (step, loss) pairs."""

    pattern = re.compile(r"step:(\S+).*?loss:([0-9.eE+-]+)")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
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
            step = match.group(1)
            value = float(step[:-1]) * {"K": 1e3, "M": 1e6}[step[-1]] if step[-1] in "KM" else float(step)
            self.points.append((int(value), float(match.group(2))))


def train(cfg: DemoConfig, dataset: Path, out: Path, layout: Layout) -> None:
    from groot_ros.tools.training import demo_train_options, make_tiny_base_model, train as run_train

    base = make_tiny_base_model(out / "tiny_base", seed=cfg.seed)
    options = demo_train_options(dataset / "train", out / "run", base, steps=cfg.train_steps,
                                 batch_size=cfg.batch_size, seed=cfg.seed)
    losses = LossLog()
    with losses.attached():
        run_train(options, layout)
    (out / "loss.json").write_text(json.dumps(losses.points))


def evaluate(cfg: DemoConfig, dataset: Path, trained: Path, out: Path, layout: Layout) -> None:
    """Trained vs untrained (the same checkpoint with its base weights back) on the held-out episode."""
    from groot_ros.tools.eval_dataset import EvalOptions, evaluate as run_eval
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.tools.training import untrained_runtime

    checkpoint = trained / "run" / "checkpoints" / "last" / "pretrained_model"
    options = EvalOptions(episodes=(0,), action_chunk_size=8, variants=("normal", "state-zero", "image-zero"),
                          seed=cfg.seed)
    runtimes = {"trained": lambda: GrootRuntime.load(checkpoint, layout),
                "untrained": lambda: untrained_runtime(checkpoint, layout)}
    results = {name: run_eval(make(), dataset / "held_out", out / name, options).metrics
               for name, make in runtimes.items()}
    (out / "comparison.json").write_text(json.dumps(results, indent=2, default=float))


def closed_loop(cfg: DemoConfig, trained: Path, out: Path) -> None:
    """The trained checkpoint on the stand-in sim through sim_depalletize.launch, recorded to a bag."""
    import rospy

    from groot_ros.demo.recording import bag_closed
    from groot_ros.msg import PolicyStatus
    from groot_ros.sim.launcher import Watched, check_alive, private_master, roslaunch, stop, wait_until

    ckpt = (trained / "run" / "checkpoints" / "last" / "pretrained_model").resolve()
    topics = ["/groot_policy/command_preview", "/groot_policy/action_chunk", "/groot_policy/status", "/diagnostics",
              "/sensors_data_raw", "/leju_claw_state", "/humanoid_wbc_observation", "/kuavo_arm_traj"]
    with private_master(out) as env:
        launch = roslaunch(["groot_ros", "sim_depalletize.launch", f"checkpoint:={ckpt}", f"task:={cfg.task}"],
                           env, out / "launch.log")
        bag = None
        try:
            rospy.init_node("groot_demo", anonymous=True, disable_signals=True)
            statuses: list = []
            sub = rospy.Subscriber("/groot_policy/status", PolicyStatus, statuses.append, queue_size=5)
            wait_until(lambda: statuses, 300, "status from the policy node", [launch])
            sub.unregister()
            with open(out / "rosbag.log", "w") as bag_log:
                bag = subprocess.Popen(["rosbag", "record", "-O", str(out / "closed_loop.bag"), *topics], env=env,
                                       stdout=bag_log, stderr=subprocess.STDOUT, start_new_session=True)
            watch = [launch, Watched("rosbag record", bag, out / "rosbag.log")]
            end = time.monotonic() + cfg.closed_loop_seconds
            while time.monotonic() < end:
                check_alive(watch, "the closed-loop run")
                time.sleep(0.5)
        finally:
            if bag is not None:
                stop(bag)
            stop(launch.proc)
        if bag is not None and not bag_closed(out / "closed_loop.bag"):  # before the stage is stamped
            raise RuntimeError(f"rosbag record did not close {out / 'closed_loop.bag'} (see {out / 'rosbag.log'})")


def run_demo(cfg: DemoConfig) -> Path:
    from groot_ros.demo.report import write_report

    cfg = replace(cfg, out=cfg.out.resolve())  # children (roslaunch) run elsewhere: hand them absolute paths
    layout = load_layout()
    stages = Stages(cfg.out)
    bags = stages.run("1_recordings", {k: getattr(cfg, k) for k in ("episodes", "episode_seconds", "seed", "task")},
                      lambda out: record(cfg, out))
    data = stages.run("2_dataset", {"task": cfg.task, "held_out": cfg.held_out},
                      lambda out: convert(cfg, bags, out, layout), upstream=(bags,))
    model = stages.run("3_training", {"steps": cfg.train_steps, "batch": cfg.batch_size, "seed": cfg.seed},
                       lambda out: train(cfg, data, out, layout), upstream=(data,))
    evals = stages.run("4_evaluation", {"seed": cfg.seed},
                       lambda out: evaluate(cfg, data, model, out, layout), upstream=(data, model))
    loop = stages.run("5_closed_loop", {"seconds": cfg.closed_loop_seconds, "task": cfg.task},
                      lambda out: closed_loop(cfg, model, out), upstream=(model,))
    report = write_report(cfg, layout, bags, data, model, evals, loop, stages.timings)
    print(f"\n[demo] report: {report}")
    return report
