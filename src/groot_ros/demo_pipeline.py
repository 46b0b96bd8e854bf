"""`make demo`: record -> dataset -> train -> evaluate -> deploy in closed loop -> report, offline on a CPU.

Every stage writes into one work folder and leaves a stamp (its inputs); a re-run skips a stage whose stamp
matches and says so. The report compares the trained tiny model with the untrained one on a held-out episode
and shows the node driving the stand-in sim with the trained checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from groot_ros.layout import Layout, load_layout

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


class Stages:
    """Runs stages once per set of inputs; prints what ran and what was cached, with times."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, tuple[float, bool]] = {}

    def run(self, name: str, inputs: dict, fn: Callable[[Path], Any]) -> Path:
        out = self.root / name
        stamp = out / ".stamp.json"
        key = json.dumps(inputs, sort_keys=True, default=str)
        if stamp.exists() and stamp.read_text() == key:
            print(f"[demo] {name}: cached ({out}); delete it to redo", flush=True)
            self.timings[name] = (0.0, True)
            return out
        if out.exists():
            import shutil

            shutil.rmtree(out)
        out.mkdir(parents=True)
        print(f"[demo] {name}: running ...", flush=True)
        t0 = time.perf_counter()
        fn(out)
        elapsed = time.perf_counter() - t0
        stamp.write_text(key)
        self.timings[name] = (elapsed, False)
        print(f"[demo] {name}: done in {elapsed:.0f} s", flush=True)
        return out


def record(cfg: DemoConfig, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "groot_ros", "record-demos", "--out", str(out), "--episodes",
                    str(cfg.episodes), "--seconds", str(cfg.episode_seconds), "--seed", str(cfg.seed), "--topics", "sim",
                    "--task", cfg.task], check=True)


def convert(cfg: DemoConfig, bags: Path, out: Path, layout: Layout) -> None:
    from groot_ros.bag2lerobot import ConvertOptions, convert as to_lerobot, find_bags, load_task_map

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
    from groot_ros.training import demo_train_options, make_tiny_base_model, train as run_train

    base = make_tiny_base_model(out / "tiny_base", seed=cfg.seed)
    options = demo_train_options(dataset / "train", out / "run", base, steps=cfg.train_steps,
                                 batch_size=cfg.batch_size, seed=cfg.seed)
    losses = LossLog()
    with losses.attached():
        run_train(options, layout)
    (out / "loss.json").write_text(json.dumps(losses.points))


def evaluate(cfg: DemoConfig, dataset: Path, trained: Path, out: Path, layout: Layout) -> None:
    """Trained vs untrained (the same checkpoint with its base weights back) on the held-out episode."""
    from groot_ros.eval_dataset import EvalOptions, evaluate as run_eval
    from groot_ros.runtime import GrootRuntime
    from groot_ros.training import untrained_runtime

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

    from groot_ros.msg import PolicyStatus
    from groot_ros.sim.launcher import private_master, stop

    ckpt = trained / "run" / "checkpoints" / "last" / "pretrained_model"
    topics = ["/groot_policy/command_preview", "/groot_policy/action_chunk", "/groot_policy/status", "/diagnostics",
              "/sensors_data_raw", "/leju_claw_state", "/humanoid_wbc_observation", "/kuavo_arm_traj"]
    with private_master(out) as env:
        launch = subprocess.Popen(["roslaunch", "groot_ros", "sim_depalletize.launch", f"checkpoint:={ckpt}",
                                   f"task:={cfg.task}"], env=env, stdout=open(out / "launch.log", "w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        bag = None
        try:
            rospy.init_node("groot_demo", anonymous=True, disable_signals=True)
            rospy.wait_for_message("/groot_policy/status", PolicyStatus, timeout=180)
            bag = subprocess.Popen(["rosbag", "record", "-O", str(out / "closed_loop.bag"), *topics], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
            time.sleep(cfg.closed_loop_seconds)
        finally:
            if bag is not None:
                stop(bag)
            stop(launch)


def run_demo(cfg: DemoConfig) -> Path:
    from groot_ros.demo_report import write_report

    layout = load_layout()
    stages = Stages(cfg.out)
    base = asdict(cfg) | {"out": str(cfg.out)}
    bags = stages.run("1_recordings", {k: base[k] for k in ("episodes", "episode_seconds", "seed")},
                      lambda out: record(cfg, out))
    data = stages.run("2_dataset", {"bags": str(bags), "task": cfg.task, "held_out": cfg.held_out},
                      lambda out: convert(cfg, bags, out, layout))
    model = stages.run("3_training", {"data": str(data), "steps": cfg.train_steps, "batch": cfg.batch_size,
                                      "seed": cfg.seed}, lambda out: train(cfg, data, out, layout))
    evals = stages.run("4_evaluation", {"model": str(model), "seed": cfg.seed},
                       lambda out: evaluate(cfg, data, model, out, layout))
    loop = stages.run("5_closed_loop", {"model": str(model), "seconds": cfg.closed_loop_seconds},
                      lambda out: closed_loop(cfg, model, out))
    report = write_report(cfg, layout, bags, data, model, evals, loop, stages.timings)
    print(f"\n[demo] report: {report}")
    return report
