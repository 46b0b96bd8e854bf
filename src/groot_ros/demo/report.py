"""The demo's report folder: index.md plus PNGs, from what the pipeline's stages left on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from groot_ros.core.layout import Layout


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_figure(points: list[list[float]], path: Path) -> bool:
    if not points:
        return False
    plt = _plt()
    steps, losses = zip(*points)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, losses, marker=".")
    ax.set_xlabel("training step")
    ax.set_ylabel("flow-matching loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title("Training loss (tiny GR00T, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def read_closed_loop(bag_path: Path, layout: Layout) -> dict[str, Any]:
    """Commanded and measured trajectories (robot units, seconds from the first command) and the last diagnostics."""
    import rosbag

    from groot_ros.core.layout import read_field

    commanded_t, commanded, measured_t, measured, diag = [], [], [], [], {}
    joints = next(c for c in layout.state if c.stream == "joints")
    with rosbag.Bag(str(bag_path)) as bag:
        for topic, msg, t in bag.read_messages():
            if topic == "/groot_policy/command_preview":
                commanded_t.append(t.to_sec())
                commanded.append(np.asarray(msg.position))
            elif topic == "/sensors_data_raw":
                q = np.asarray(read_field(msg, joints.field))
                measured_t.append(t.to_sec())
                measured.append(q[list(joints.indices)])
            elif topic == "/diagnostics":
                for status in msg.status:
                    if status.name == "groot_policy":
                        diag = {kv.key: kv.value for kv in status.values}
    t0 = commanded_t[0] if commanded_t else 0.0
    return {"commanded_t": np.asarray(commanded_t) - t0, "commanded": np.asarray(commanded),
            "measured_t": np.asarray(measured_t) - t0, "measured": np.asarray(measured), "diagnostics": diag}


def demonstration(dataset_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Time (s) and action rows of episode 0 of a local LeRobot dataset."""
    from groot_ros.tools.eval_dataset import open_dataset

    ds = open_dataset(dataset_root)
    frames = [ds.hf_dataset[i] for i in range(len(ds.hf_dataset)) if int(ds.hf_dataset[i]["episode_index"]) == 0]
    actions = np.stack([np.asarray(f["action"]) for f in frames])
    return np.arange(len(actions)) / float(ds.fps), actions


def closed_loop_figure(loop: dict, demo_t: np.ndarray, demo: np.ndarray, layout: Layout, path: Path) -> bool:
    if len(loop["commanded"]) == 0:
        return False
    plt = _plt()
    arm = layout.action_slices()["Left_arm"]
    joints = list(range(arm.start, arm.start + 4))
    fig, axes = plt.subplots(len(joints), 1, figsize=(8, 2.1 * len(joints)), sharex=True)
    for ax, d in zip(axes, joints):
        ax.plot(loop["commanded_t"], loop["commanded"][:, d], label="node command (closed loop)", lw=1.2)
        if len(loop["measured"]):
            ax.plot(loop["measured_t"], loop["measured"][:, d], label="sim joint (measured)", lw=1.0, alpha=0.8)
        ax.plot(demo_t, demo[:, d], label="demonstration (held-out episode)", lw=1.0, ls="--")
        ax.set_ylabel(f"{layout.action_names[d]} [rad]")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle("Closed loop on the stand-in sim vs a demonstration")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def motion_coverage(loop: dict, demo: np.ndarray, layout: Layout) -> list[str]:
    """How much of the demonstration's range of motion the closed-loop run covered, per arm joint and torso.

    A policy that reproduces the task covers about 100 %; one that stays near its start pose covers little,
    whatever its offline error says. Stated plainly so the report cannot look better than the robot did.
    """
    if len(loop["commanded"]) == 0:
        return []
    names = layout.action_names
    dims = [d for d in range(len(names)) if np.ptp(demo[:, d]) > 1e-6 and not names[d].endswith("claw")]
    cover = {names[d]: float(np.ptp(loop["commanded"][:, d]) / np.ptp(demo[:, d])) for d in dims}
    median = float(np.median(list(cover.values())))
    worst = sorted(cover.items(), key=lambda kv: kv[1])[:4]
    verdict = ("it reproduces the demonstrated motion" if median >= 0.7 else
               "it does NOT reproduce the demonstrated motion: it stays close to where it started")
    return ["", f"Range of motion commanded in closed loop as a share of the demonstration's, median over "
                f"{len(dims)} moving dimensions: **{100 * median:.0f} %**: {verdict}. Least covered: "
                + ", ".join(f"{k} {100 * v:.0f} %" for k, v in worst) + "."]


def _component_table(comparison: dict, layout: Layout) -> list[str]:
    rows = ["| component | unit | trained MAE | untrained MAE | untrained / trained |", "|---|---|---|---|---|"]
    for comp in layout.action:
        t = comparison["trained"]["results"]["normal"]["overall"]["components"][comp.name]["mae"]
        u = comparison["untrained"]["results"]["normal"]["overall"]["components"][comp.name]["mae"]
        rows.append(f"| {comp.name} | {comp.units[0]} | {t:.4g} | {u:.4g} | {u / t:.2f}x |" if t > 0 else
                    f"| {comp.name} | {comp.units[0]} | {t:.4g} | {u:.4g} | - |")
    return rows


def write_report(cfg: Any, layout: Layout, bags: Path, data: Path, model: Path, evals: Path, loop: Path,
                 timings: dict[str, tuple[float, bool]]) -> Path:
    report = Path(cfg.out) / "report"
    shutil.rmtree(report, ignore_errors=True)
    report.mkdir(parents=True)
    lines = ["# groot_ros demo report", "",
             "Everything below ran offline on this machine's CPU: the Kuavo stand-in sim with a scripted "
             "demonstrator, bag2lerobot, tiny GR00T N1.5-architecture training through LeRobot, eval-dataset on a "
             "held-out episode, and the policy node driving the stand-in in closed loop.", "",
             "| stage | time | |", "|---|---|---|"]
    lines += [f"| {name} | {secs:.0f} s | {'cached (delete the folder to redo)' if cached else 'ran'} |"
              for name, (secs, cached) in timings.items()]

    summary = json.loads((data / "summary.json").read_text())
    lines += ["", "## Dataset", ""]
    for split, episodes in summary.items():
        used = [e for e in episodes if not e["skipped"]]
        lines.append(f"- {split}: {len(used)} episodes, {sum(e['frames'] for e in used)} frames at 10 fps"
                     + "".join(f"; skipped {e['bag']}: {e['skipped']}" for e in episodes if e["skipped"]))

    lines += ["", "## Training", ""]
    points = json.loads((model / "loss.json").read_text())
    if loss_figure(points, report / "training_loss.png"):
        lines += [f"Loss {points[0][1]:.3f} at step {points[0][0]} -> {points[-1][1]:.3f} at step {points[-1][0]}.",
                  "", "![training loss](training_loss.png)"]
    else:
        lines.append("(no loss lines were logged)")

    comparison = json.loads((evals / "comparison.json").read_text())
    trained = comparison["trained"]["results"]["normal"]["overall"]["range_mae"]
    untrained = comparison["untrained"]["results"]["normal"]["overall"]["range_mae"]
    ratio = untrained / trained if trained else float("nan")
    verdict = "beats" if ratio >= 2 else "does NOT clearly beat"
    lines += ["", "## Trained vs untrained on the held-out episode", "",
              f"Mean absolute error as a share of each dimension's action range: trained {100 * trained:.1f} %, "
              f"untrained {100 * untrained:.1f} %: the trained model {verdict} the untrained one "
              f"(**{ratio:.1f}x** lower error).", ""]
    lines += _component_table(comparison, layout)
    ablation = (evals / "trained" / "ablation.txt")
    if ablation.exists():
        lines += ["", "Ablations of the trained model (state-zero / image-zero):", "", "```", ablation.read_text().rstrip(),
                  "```"]
    for png in sorted((evals / "trained").rglob("*.png")):
        shutil.copy2(png, report / f"eval_{png.name}")
        lines += ["", f"![{png.stem}](eval_{png.name})"]

    lines += ["", "## Closed loop on the stand-in sim", ""]
    bag = loop / "closed_loop.bag"
    if bag.exists():
        data_loop = read_closed_loop(bag, layout)
        demo_t, demo = demonstration(data / "held_out")
        if closed_loop_figure(data_loop, demo_t, demo, layout, report / "closed_loop.png"):
            lines += ["![closed loop](closed_loop.png)", ""]
        lines += motion_coverage(data_loop, demo, layout)
        diag = data_loop["diagnostics"]
        keys = ["chunks", "stall_ticks", "clamps", "inference_p50_ms", "inference_p99_ms", "control_period_p50_ms",
                "control_period_p99_ms", "observation_build_p50_ms", "chunk_to_command_p50_ms"]
        lines += ["", "| node figure | value |", "|---|---|"] + [f"| {k} | {diag.get(k, '-')} |" for k in keys]
        lines += ["", "Safety envelope, as the node reported it:", "", "```", diag.get("safety", "-"), "```"]
    else:
        lines.append("(no closed-loop recording)")
    index = report / "index.md"
    index.write_text("\n".join(lines) + "\n")
    (report / "summary.json").write_text(json.dumps({"trained_range_mae": trained, "untrained_range_mae": untrained,
                                                     "untrained_over_trained": ratio}, indent=2))
    return index
