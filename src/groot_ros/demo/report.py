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


def episode_figure(k: int, episodes: dict[str, dict], layout: Layout, path: Path) -> None:
    """One closed-loop episode, every policy: left shoulder yaw and pitch against the box's grasp pose, claws."""
    from groot_ros.sim.task import grasp_arms

    plt = _plt()
    names = layout.action_names
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.2), sharex=True)
    colors = {"trained": "tab:blue", "untrained": "tab:red", "hold": "tab:gray"}
    box = next(iter(episodes.values()))["box"]
    grasp = grasp_arms(tuple(box))
    for ax, d in zip(axes[:2], (2, 0)):
        ax.axhline(grasp[d], color="black", ls="--", lw=1, label="grasp pose for this box")
        ax.set_ylabel(f"{names[d]} [rad]")
    for policy, e in episodes.items():
        t, arm = np.asarray(e["t"]), np.asarray(e["arm"])
        if len(t):
            axes[0].plot(t, arm[:, 2], color=colors.get(policy), label=f"{policy}: {e['phase']}")
            axes[1].plot(t, arm[:, 0], color=colors.get(policy))
        if len(e["claw_t"]):
            axes[2].plot(e["claw_t"], np.asarray(e["claw"])[:, 0], color=colors.get(policy))
        for t_phase, phase in e["phases"][1:]:
            axes[2].axvline(t_phase, color=colors.get(policy), ls=":", lw=1)
            axes[2].text(t_phase, 95, phase, fontsize=7, color=colors.get(policy), rotation=90, va="top")
    axes[2].set_ylabel("left claw (0 open)")
    axes[2].set_xlabel("time from the episode's start (s)")
    axes[0].legend(fontsize=7, loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"closed-loop episode {k}: box at {box[0]:+.3f} m lateral, {box[1]:+.3f} m forward", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def nearest_training_box(box: list[float], recordings: Path) -> float | None:
    """Distance (m) from `box` to the closest box of the training episodes (all recorded but the last)."""
    episodes = recordings / "episodes.json"
    if not episodes.exists():
        return None
    boxes = [e["box_offset_m"] for e in json.loads(episodes.read_text())]
    return float(min(np.hypot(box[0] - b[0], box[1] - b[1]) for b in boxes[:-1] or boxes))


def closed_loop_section(loop: Path, bags: Path, layout: Layout, report: Path) -> tuple[list[str], dict]:
    from groot_ros.demo.closed_loop import success_table

    data = json.loads((loop / "episodes.json").read_text())
    policies = data["policies"]
    count = len(next(iter(policies.values())))
    lines = ["## Task success in closed loop (box positions not seen in training)", "",
             "Each episode starts from home (where the demonstrations end; their start yaw is drawn around it) with "
             "the box somewhere new on the pallet, within the demonstrated range; the stand-in scores it "
             "(docs/kuavo_sim.md: both claws close within 8 deg of the box's grasp pose, carry, open over the "
             "conveyor). untrained: the same checkpoint with its base weights; hold: home held.", ""]
    lines += success_table(policies)
    trained = policies.get("trained", [])
    steps = np.concatenate([e["boundary_steps"] for e in trained]) if trained else np.zeros(0)
    limit = 2 * data["demo_largest_step"]
    duration = sum(e["seconds"] for e in trained)
    clamps = sum(e["clamps"] for e in trained)
    figures: dict = {"success": {p: sum(e["success"] for e in eps) for p, eps in policies.items()}, "episodes": count,
                     "demo_largest_step": data["demo_largest_step"],
                     "clamps_per_s": clamps / duration if duration else 0.0}
    if len(steps):
        figures.update(boundary_step_p99=float(np.percentile(steps, 99)), boundary_step_max=float(steps.max()))
        lines += ["", f"Trained, {len(steps)} chunk boundaries: how far each new chunk is from the previous "
                      f"chunk's plan at the moment it takes over (arms; blend {data.get('blend', 'crossfade')}): p99 **{figures['boundary_step_p99']:.3f} rad**, max "
                      f"{figures['boundary_step_max']:.3f} rad. The demonstrations' largest step between frames is "
                      f"{data['demo_largest_step']:.3f} rad; x 2 = {limit:.3f} rad: "
                      + ("within it." if figures["boundary_step_max"] <= limit else "**exceeded**.")]
    lines += ["", f"Safety clamps: {clamps} in {duration:.0f} s of trained episodes "
                  f"({figures['clamps_per_s']:.1f} per second).", ""]
    for k in range(count):
        episodes = {p: eps[k] for p, eps in policies.items()}
        box = next(iter(episodes.values()))["box"]
        near = nearest_training_box(box, bags)
        name = f"closed_loop_episode_{k}.png"
        episode_figure(k, episodes, layout, report / name)
        lines += [f"Episode {k}: box ({box[0]:+.3f}, {box[1]:+.3f}) m"
                  + (f", {100 * near:.1f} cm from the nearest training box" if near is not None else "") + ": "
                  + ", ".join(f"{p} {e['phase']}" for p, e in episodes.items()), "", f"![episode {k}]({name})", ""]
    return lines, figures


def _component_table(metrics: dict, layout: Layout) -> list[str]:
    names = ["normal", *metrics["baselines"]]
    label = {"normal": "trained"}
    rows = ["| component | unit | " + " | ".join(f"{label.get(n, n)} MAE" for n in names) + " |",
            "|---|---|" + "---|" * len(names)]
    for comp in layout.action:
        rows.append(f"| {comp.name} | {comp.units[0]} | " + " | ".join(
            f"{metrics['results'][n]['overall']['components'][comp.name]['mae']:.4g}" for n in names) + " |")
    rows.append("| all | % of range | " + " | ".join(
        f"{100 * metrics['results'][n]['overall']['range_mae']:.1f} %" for n in names) + " |")
    return rows


def blend_section(cells_json: Path | None, ran_here: bool) -> list[str]:
    """The blends x latencies table of `sim-loop`: this run's when the demo ran it, else the committed one."""
    from groot_ros.demo.sim_loop import TABLE_HEADER, CellSummary

    lines = ["## Chunk boundaries: blends and real-time chunking (sim-loop)", ""]
    if cells_json is None or not cells_json.is_file():
        return lines + ["(no sim-loop table: run `python -m groot_ros sim-loop`, docs/rtc.md)", ""]
    cells = [CellSummary(**c) for c in json.loads(cells_json.read_text())]
    boxes = sorted({c.boxes for c in cells})
    source = ("this run's trained checkpoint" if ran_here else
              f"a `make demo` checkpoint, committed in {cells_json.name} (docs/rtc.md; `--sim-loop-boxes N` repeats "
              "it on this run's checkpoint)")
    lines += [f"The closed loop without ROS in simulated time (`python -m groot_ros sim-loop`: the stand-in's core, "
              f"the node's execution core, injected latency), {'/'.join(map(str, boxes))} unseen boxes per cell, "
              f"on {source}. Boundary: the new chunk against the old plan when it takes over.", ""]
    return lines + TABLE_HEADER + [c.row() for c in cells] + [""]


def write_report(cfg: Any, layout: Layout, bags: Path, data: Path, model: Path, evals: Path, loop: Path,
                 timings: dict[str, tuple[float, bool]], blends: Path | None = None,
                 blends_ran_here: bool = False, dagger: tuple[Path, Path, Path] | None = None) -> Path:
    """`dagger`: the DAgger round's (runs, retraining, evaluation) stage folders, when it ran."""
    report = Path(cfg.out) / "report"
    shutil.rmtree(report, ignore_errors=True)
    report.mkdir(parents=True)
    lines = ["# groot_ros demo report", "",
             "Everything below ran offline on this machine's CPU: the Kuavo stand-in sim with a scripted "
             "demonstrator, bag2lerobot, tiny GR00T N1.5-architecture training through LeRobot, eval-dataset on a "
             "held-out episode, and the policy node driving the stand-in in closed loop.", ""]
    loop_lines, loop_summary = closed_loop_section(loop, bags, layout, report)
    lines += loop_lines + blend_section(blends, blends_ran_here)
    dagger_summary = None
    if dagger is not None:
        from groot_ros.demo.dagger import section

        dagger_lines, dagger_summary = section(*dagger)
        lines += dagger_lines

    metrics = json.loads((evals / "trained" / "metrics.json").read_text())
    res = metrics["results"]
    trained, hold = res["normal"]["overall"]["range_mae"], res["hold"]["overall"]["range_mae"]
    untrained = res["untrained"]["overall"]["range_mae"] if "untrained" in res else float("nan")
    lines += ["## Offline, on the held-out episode", "",
              f"Mean absolute error as a share of each dimension's action range, 8 rows of each chunk executed: "
              f"trained {100 * trained:.1f} %, untrained {100 * untrained:.1f} %, hold the current state "
              f"{100 * hold:.1f} %: {metrics['verdict']}.", ""]
    lines += _component_table(metrics, layout)
    lines += ["", "Error per chunk row (row r of every chunk against the frame it stands for):", "",
              "![error per chunk row](eval_chunk_rows.png)", "", "Ablations of the trained model:", "", "```",
              (evals / "trained" / "ablation.txt").read_text().rstrip(), "```"]
    for png in sorted((evals / "trained").rglob("*.png")):
        shutil.copy2(png, report / f"eval_{png.name}")
        if png.name != "chunk_rows.png":
            lines += ["", f"![{png.stem}](eval_{png.name})"]

    lines += ["", "## Training", ""]
    points = json.loads((model / "loss.json").read_text())
    info = json.loads((model / "training.json").read_text())
    if loss_figure(points, report / "training_loss.png"):
        lines += [f"{info['final_step']} steps in {info['seconds']:.0f} s; loss (mean over the last "
                  f"{info['log_freq']} steps) {points[0][1]:.3f} at step {points[0][0]} -> {points[-1][1]:.3f} at "
                  f"step {points[-1][0]}.", "", "![training loss](training_loss.png)"]
    else:
        lines.append("(no loss lines were logged)")

    summary = json.loads((data / "summary.json").read_text())
    lines += ["", "## Dataset", ""]
    for split, episodes in summary.items():
        used = [e for e in episodes if not e["skipped"]]
        lines.append(f"- {split}: {len(used)} episodes, {sum(e['frames'] for e in used)} frames at 10 fps"
                     + "".join(f"; skipped {e['bag']}: {e['skipped']}" for e in episodes if e["skipped"]))
    lines += ["", "| stage | time | |", "|---|---|---|"]
    lines += [f"| {name} | {secs:.0f} s | {'cached (delete the folder to redo)' if cached else 'ran'} |"
              for name, (secs, cached) in timings.items()]
    index = report / "index.md"
    index.write_text("\n".join(lines) + "\n")
    (report / "summary.json").write_text(json.dumps({
        "closed_loop": loop_summary, "trained_range_mae": trained, "untrained_range_mae": untrained,
        "hold_range_mae": hold, "untrained_over_trained": untrained / trained if trained else None,
        "trained_beats_hold": trained < hold, "final_step": info["final_step"],
        "final_loss": points[-1][1] if points else None, "dagger": dagger_summary}, indent=2))
    return index
