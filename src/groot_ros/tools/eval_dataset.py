"""Replay a checkpoint on recorded episodes of a local LeRobot v3.0 dataset and measure its action error.

The policy runs through the node's GrootRuntime (same preprocessing, same de-normalization of all 16 rows,
same layout checks), fed each frame's `observation.state`, images (uint8 RGB, as the node decodes them) and
task. Open loop, like the seed's eval_on_dataset.py: at frame t the model predicts a chunk, the first K rows
stand for frames t..t+K-1, and it re-infers at t+K. Errors are in robot units per action dimension.

Ablations show what the policy relies on: `state-zero` feeds the state whose normalized value is 0 (the
middle of the checkpoint's min/max: the model's state input is all zeros, with no out-of-range values),
`image-zero` feeds black images. The same noise seed is used per chunk in every variant, so differences come
from the inputs only.

Baselines put the error in scale: `hold` commands the current state (the action that keeps the robot where it
is at each chunk start, for every row of the chunk) and needs no model; `untrained` (when a runtime is given)
is the same checkpoint with its base weights. A model that does not beat `hold` has learnt less than standing
still, and the summary says so. Errors are also reported per chunk row (row 0 .. chunk_size - 1 of every
chunk against the frames it stands for): how fast a chunk drifts from the demonstration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from groot_ros.core.layout import Layout, stats_problems
from groot_ros.core.observation import Observation
from groot_ros.tools.eval_units import range_mae, to_uint8_hwc

VARIANTS = ("normal", "state-zero", "image-zero")
HOLD, UNTRAINED = "hold", "untrained"


class EvalError(ValueError):
    """The dataset, episodes or options cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class EvalOptions:
    episodes: Sequence[int] | None = (0,)  # None: every episode
    action_chunk_size: int = 16
    variants: Sequence[str] = ("normal",)
    task: str | None = None  # None: each frame's task from the dataset
    seed: int = 0
    max_frames: int | None = None  # per episode, for quick looks
    plots: bool = True
    # base height that relative torso actions are measured from (hold baseline); None: from each episode's
    # first frame, where the robot stands still at its commanded offset
    nominal_height: float | None = None
    humanoid_groot: bool = False  # also the users' script's score (tools/eval_theirs.py), one call per frame


@dataclass(frozen=True)
class Rollout:
    """One episode under one variant: predictions and truth per frame, and where each chunk started."""

    episode: int
    variant: str
    predicted: np.ndarray  # (T, action_dim) robot units
    truth: np.ndarray  # (T, action_dim)
    chunk_starts: tuple[int, ...]  # frame indices within the episode
    chunks: np.ndarray  # (len(chunk_starts), chunk_size, action_dim): every row of every chunk

    def row_errors(self) -> list[np.ndarray]:
        """Per chunk row r: the errors (n, action_dim) of row r of every chunk against frame start + r."""
        rows = self.chunks.shape[1]
        return [np.stack([self.chunks[n, r] - self.truth[t + r] for n, t in enumerate(self.chunk_starts)
                          if t + r < len(self.truth)] or [np.full(self.truth.shape[1], np.nan)]) for r in range(rows)]


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    metrics: dict
    rollouts: tuple[Rollout, ...]
    figures: tuple[Path, ...] = field(default=())


def open_dataset(root: str | Path) -> Any:
    """A local LeRobot v3.0 dataset; anything else is a clear error, never a hub download."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.tools.episodes import EpisodeError, v30_info

    root = Path(root).resolve()
    try:
        v30_info(root, "eval-dataset")
    except EpisodeError as exc:
        raise EvalError(str(exc)) from exc
    # PyAV bundles its own FFmpeg; torchcodec (LeRobot's default when importable) needs system FFmpeg libraries.
    return LeRobotDataset(f"local/{root.name}", root=root, video_backend="pyav")


def dataset_problems(layout: Layout, features: Mapping[str, dict], camera_keys: Sequence[str]) -> list[str]:
    """Where the dataset's features disagree with the layout (dims, per-dimension names, cameras)."""
    def dim(key: str) -> int | None:
        return int(features[key]["shape"][0]) if key in features else None

    problems = [p.replace("checkpoint", "dataset") for p in
                stats_problems(layout, dim("observation.state"), dim("action"), None, None)]
    # Feature names as datasets write them (humanoid_groot's); datasets converted before they existed carry
    # the component names (J_q_0, ...), which are accepted too.
    for key, names, legacy in (("observation.state", layout.state_feature_names, layout.state_names),
                               ("action", layout.action_feature_names, layout.action_names)):
        if key not in features:
            problems.append(f"dataset has no '{key}' feature")
        elif features[key].get("names") and list(features[key]["names"]) not in (names, legacy) \
                and dim(key) == len(names):
            problems.append(f"dataset {key} names {features[key]['names']} differ from layout '{layout.name}' {names}")
    missing = sorted(set(layout.camera_keys) - set(camera_keys))
    if missing:
        problems.append(f"dataset lacks the camera features {missing}")
    return problems


def episode_indices(dataset: Any, wanted: Sequence[int] | None) -> list[int]:
    total = int(dataset.meta.total_episodes)
    if wanted is None:
        return list(range(total))
    bad = [e for e in wanted if not 0 <= e < total]
    if bad:
        raise EvalError(f"episodes {bad} do not exist: the dataset has episodes 0..{total - 1}")
    return list(dict.fromkeys(wanted))


def observation_at(dataset: Any, index: int, variant: str, state_zero: np.ndarray, camera_keys: Sequence[str],
                   task: str | None) -> Observation:
    item = dataset[index]
    state = np.asarray(item["observation.state"], dtype=np.float64)
    images = {k: to_uint8_hwc(item[k]) for k in camera_keys}
    if variant == "state-zero":
        state = state_zero.copy()
    elif variant == "image-zero":
        images = {k: np.zeros_like(v) for k, v in images.items()}
    return Observation(state=state, images=images, task=task or item["task"], stamp=float(item["timestamp"]))


def _episode_range(dataset: Any, episode: int, options: EvalOptions) -> tuple[int, int]:
    meta = dataset.meta.episodes[episode]
    start, stop = int(meta["dataset_from_index"]), int(meta["dataset_to_index"])
    return start, stop if options.max_frames is None else min(stop, start + options.max_frames)


def _column(dataset: Any, key: str, start: int, stop: int) -> np.ndarray:
    return np.stack([np.asarray(a, dtype=np.float64) for a in dataset.hf_dataset.select_columns([key])[start:stop][key]])


def _assemble(episode: int, variant: str, truth: np.ndarray, k: int, chunks: list[np.ndarray]) -> Rollout:
    """The executed trajectory: the first K rows of the chunk predicted at every K-th frame."""
    predicted = np.empty_like(truth)
    starts = tuple(range(0, len(truth), k))
    for t, chunk in zip(starts, chunks):
        rows = min(k, len(truth) - t)
        predicted[t:t + rows] = chunk[:rows]
    return Rollout(episode=episode, variant=variant, predicted=predicted, truth=truth, chunk_starts=starts,
                   chunks=np.stack(chunks))


def rollout(runtime: Any, dataset: Any, episode: int, variant: str, options: EvalOptions, progress: Any) -> Rollout:
    """Open-loop replay of one episode: infer at every K-th frame, keep the first K rows of each chunk."""
    start, stop = _episode_range(dataset, episode, options)
    truth = _column(dataset, "action", start, stop)
    state_zero = runtime.stats.state.denormalize(np.zeros(runtime.stats.state.dim))
    chunks = []
    for n, t in enumerate(range(0, stop - start, options.action_chunk_size)):
        obs = observation_at(dataset, start + t, variant, state_zero, runtime.info.camera_keys, options.task)
        chunks.append(runtime.predict_chunk(obs, seed=options.seed + 7919 * episode + n))
        progress.update(1)
    return _assemble(episode, variant, truth, options.action_chunk_size, chunks)


def hold_rollout(layout: Layout, dataset: Any, episode: int, options: EvalOptions, chunk_size: int) -> Rollout:
    """The `hold` baseline: at every chunk start, command the measured state for the whole chunk."""
    start, stop = _episode_range(dataset, episode, options)
    truth = _column(dataset, "action", start, stop)
    states = _column(dataset, "observation.state", start, stop)
    nominal = options.nominal_height
    if nominal is None:  # the first frame stands still at its commanded offset
        relative = [c for c in layout.action if c.measured_relative]
        nominal = 0.0
        if relative:
            comp = relative[0]
            s = layout.action_slices()[comp.name]
            measured = states[0][layout.state_slices()[comp.measured_state]][list(comp.measured_index)]
            nominal = float(np.mean(measured - truth[0, s]))
    chunks = [np.repeat(layout.measured_action(states[t], nominal)[None], chunk_size, axis=0)
              for t in range(0, stop - start, options.action_chunk_size)]
    return _assemble(episode, HOLD, truth, options.action_chunk_size, chunks)


def error_stats(err: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and max |error| over all values of `err` (robot units)."""
    a = np.abs(err)
    return {"mae": float(a.mean()), "rmse": float(np.sqrt((err ** 2).mean())), "max": float(a.max())}


def metrics_for(err: np.ndarray, layout: Layout, span: np.ndarray) -> dict:
    names = layout.action_names
    slices = layout.action_slices()
    return {
        "frames": int(err.shape[0]),
        "dimensions": {names[d]: error_stats(err[:, d]) for d in range(err.shape[1])},
        "components": {c: {**error_stats(err[:, s]), "range_mae": range_mae(err[:, s], span[s])}
                       for c, s in slices.items()},
        "range_mae": range_mae(err, span),
    }


def per_row_range_mae(rollouts: Sequence[Rollout], span: np.ndarray) -> list[float | None]:
    """range_mae of chunk row r (r = 0 .. chunk_size - 1) over every chunk of these rollouts."""
    per_episode = [r.row_errors() for r in rollouts]
    rows = []
    for r in range(len(per_episode[0])):
        err = np.concatenate([e[r] for e in per_episode])
        err = err[np.isfinite(err).all(axis=1)]
        rows.append(range_mae(err, span) if len(err) else None)
    return rows


def build_metrics(rollouts: Sequence[Rollout], layout: Layout, span: np.ndarray, header: dict) -> dict:
    names = list(dict.fromkeys(r.variant for r in rollouts))
    results, per_row = {}, {}
    for v in names:
        mine = [r for r in rollouts if r.variant == v]
        err = np.concatenate([r.predicted - r.truth for r in mine])
        results[v] = {"overall": metrics_for(err, layout, span),
                      "episodes": {str(r.episode): metrics_for(r.predicted - r.truth, layout, span) for r in mine}}
        per_row[v] = per_row_range_mae(mine, span)
    ablation = {v: {**{c: results[v]["overall"]["components"][c]["range_mae"] for c in layout.action_slices()},
                    "all": results[v]["overall"]["range_mae"]} for v in names}
    units = dict(zip(layout.action_names, (u for c in layout.action for u in c.units)))
    variants = [v for v in names if v in VARIANTS]
    metrics = {**header, "variants": variants, "baselines": [v for v in names if v not in VARIANTS], "units": units,
               "results": results, "ablation_range_mae": ablation, "per_row_range_mae": per_row}
    return {**metrics, "verdict": verdict(metrics)}


def verdict(metrics: Mapping) -> str:
    """One plain sentence: does the model beat holding the current state (and the untrained model)?"""
    res = metrics["results"]
    if "normal" not in res or HOLD not in res:
        return ""
    model, hold = res["normal"]["overall"]["range_mae"], res[HOLD]["overall"]["range_mae"]
    if model is None or hold is None:
        return ""
    worse = [c for c, m in res["normal"]["overall"]["components"].items()
             if m["range_mae"] is not None and m["range_mae"] >= res[HOLD]["overall"]["components"][c]["range_mae"]]
    text = (f"the model beats holding the current state: {100 * model:.1f} % vs {100 * hold:.1f} % of the action "
            f"range ({hold / model:.1f}x lower)" if model < hold else
            f"the model does NOT beat holding the current state: {100 * model:.1f} % vs {100 * hold:.1f} % of the "
            f"action range: it has learnt less than standing still")
    if worse and model < hold:
        text += f"; holding is still better on {', '.join(worse)}"
    if UNTRAINED in res and res[UNTRAINED]["overall"]["range_mae"]:
        text += f"; untrained {100 * res[UNTRAINED]['overall']['range_mae']:.1f} %"
    return text


def ablation_table(metrics: dict, layout: Layout) -> str:
    """Per component: MAE in robot units per variant (and x normal); last row: MAE as % of the action range."""
    variants = metrics["variants"] + metrics.get("baselines", [])
    res = metrics["results"]
    width = max(len(c.name) for c in layout.action) + 2
    lines = [f"{'component':<{width}}{'unit':<8}" + "".join(f"{v:>22}" for v in variants)]
    lines.append("-" * len(lines[0]))

    def cell(variant: str, value: float | None, base: float | None) -> str:
        if value is None:
            return f"{'-':>22}"
        ratio = f" ({value / base:4.2f}x)" if base and variant != "normal" else ""
        return f"{value:>{22 - len(ratio)}.4g}{ratio}"

    for comp in layout.action:
        base = res["normal"]["overall"]["components"][comp.name]["mae"] if "normal" in res else None
        unit = comp.units[0] if len(set(comp.units)) == 1 else "mixed"
        lines.append(f"{comp.name:<{width}}{unit:<8}" + "".join(
            cell(v, res[v]["overall"]["components"][comp.name]["mae"], base) for v in variants))
    overall = {v: res[v]["overall"]["range_mae"] for v in variants}
    base = overall.get("normal")
    lines.append(f"{'all':<{width}}{'% range':<8}" + "".join(
        cell(v, None if overall[v] is None else 100 * overall[v], None if base is None else 100 * base)
        for v in variants))
    lines.append("")
    lines.append(reliance({v: x for v, x in overall.items() if v in VARIANTS}))
    if metrics.get("verdict"):
        lines.append(metrics["verdict"])
    return "\n".join(lines)


def row_table(metrics: Mapping) -> str:
    """Error (% of the action range) per chunk row: how a chunk drifts from the demonstration as it plays out."""
    per_row = metrics["per_row_range_mae"]
    names = list(per_row)
    lines = ["row " + "".join(f"{n:>12}" for n in names)]
    for r in range(len(next(iter(per_row.values())))):
        lines.append(f"{r:>3} " + "".join(f"{'-':>12}" if per_row[n][r] is None else f"{100 * per_row[n][r]:>11.1f}%"
                                          for n in names))
    return "\n".join(lines)


def reliance(overall: Mapping[str, float | None], threshold: float = 1.1) -> str:
    """One sentence on what the policy relies on, from the overall error ratios to the normal run."""
    base = overall.get("normal")
    effects = {v: x / base for v, x in overall.items() if v != "normal" and x is not None and base}
    if not effects:
        return "(run --ablations all to see how much the policy relies on images vs state)"
    text = "error relative to normal: " + ", ".join(f"{v} {x:.2f}x" for v, x in effects.items())
    relied = [("images" if v == "image-zero" else "state") for v, x in sorted(effects.items(), key=lambda i: -i[1])
              if x >= threshold]
    if not relied:
        return text + f" -> no ablation raises the error by {threshold:.1f}x or more: the policy barely uses them"
    return text + f" -> the policy relies most on {relied[0]}"


def write_figures(out_dir: Path, rollouts: Sequence[Rollout], layout: Layout, fps: float, metrics: dict) -> list[Path]:
    from groot_ros.tools.eval_plots import plot_ablation, plot_component, plot_rows

    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    figures = []
    slices = layout.action_slices()
    for episode in dict.fromkeys(r.episode for r in rollouts):
        mine = {r.variant: r for r in rollouts if r.episode == episode}
        first = next(iter(mine.values()))
        times = np.arange(first.truth.shape[0]) / fps
        for comp in layout.action:
            s = slices[comp.name]
            figures.append(plot_component(
                plots / f"episode_{episode:03d}_{comp.name}.png", f"episode {episode} - {comp.name}",
                layout.action_names[s], comp.units, times, first.truth[:, s], {v: r.predicted[:, s] for v, r in mine.items()},
                [t / fps for t in first.chunk_starts]))
    ablation = {v: {k: (x if x is not None else np.nan) for k, x in d.items()}
                for v, d in metrics["ablation_range_mae"].items()}
    figures.append(plot_ablation(out_dir / "ablation.png", [c.name for c in layout.action],
                                 metrics["variants"] + metrics["baselines"], ablation))
    figures.append(plot_rows(out_dir / "chunk_rows.png", metrics["per_row_range_mae"], metrics["action_chunk_size"]))
    return figures


def their_rollouts(runtime: Any, dataset: Any, episode: int, options: EvalOptions, progress: Any,
                   out: dict[str, list]) -> None:
    """Appends (last rows, truth) of every variant and of the perfect predictor on their metric to `out`."""
    from groot_ros.tools.eval_theirs import PERFECT, last_row_rollout, perfect_rows

    start, stop = _episode_range(dataset, episode, options)
    truth = _column(dataset, "action", start, stop)
    for v in options.variants:
        rows = last_row_rollout(runtime, dataset, start, stop, v, options.seed + 7919 * episode, progress)
        out.setdefault(v, []).append((rows, truth))
    out.setdefault(PERFECT, []).append((perfect_rows(truth, runtime.info.chunk_size), truth))


def evaluate(runtime: Any, dataset_root: str | Path, out_dir: str | Path, options: EvalOptions,
             progress: bool = True, untrained: Any | None = None) -> EvalResult:
    """Runs every requested variant on every requested episode and writes metrics, table and figures.

    The `hold` baseline is always scored; `untrained` (a runtime of the same checkpoint with its base weights)
    is scored as a baseline when given, with the same noise seeds as the model's normal run.
    """
    from tqdm import tqdm

    layout = runtime.layout
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown or not options.variants:
        raise EvalError(f"variants must be among {VARIANTS}, got {list(options.variants)}")
    chunk = runtime.info.chunk_size
    if not 1 <= options.action_chunk_size <= chunk:
        raise EvalError(f"--action-chunk-size must be 1..{chunk} (the checkpoint predicts {chunk} steps), "
                        f"got {options.action_chunk_size}")
    dataset = open_dataset(dataset_root)
    problems = dataset_problems(layout, dataset.meta.features, dataset.meta.camera_keys)
    if problems:
        raise EvalError(f"dataset {dataset.root} does not fit layout '{layout.name}':\n  - " + "\n  - ".join(problems))
    episodes = episode_indices(dataset, options.episodes)
    lengths = {}
    for e in episodes:
        meta = dataset.meta.episodes[e]
        n = int(meta["dataset_to_index"]) - int(meta["dataset_from_index"])
        lengths[e] = n if options.max_frames is None else min(n, options.max_frames)
    calls = sum(-(-n // options.action_chunk_size) for n in lengths.values()) * (len(options.variants)
                                                                               + (untrained is not None))
    calls += sum(lengths.values()) * len(options.variants) if options.humanoid_groot else 0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rollouts = []
    theirs: dict[str, list[np.ndarray]] = {}  # variant (and the perfect predictor) -> per episode (pred, truth)
    with tqdm(total=calls, desc="eval-dataset", unit="chunk", disable=not progress) as bar:
        for e in episodes:
            for v in options.variants:
                bar.set_postfix_str(f"episode {e} {v}")
                rollouts.append(rollout(runtime, dataset, e, v, options, bar))
            if untrained is not None:
                bar.set_postfix_str(f"episode {e} untrained")
                rollouts.append(replace(rollout(untrained, dataset, e, "normal", options, bar), variant=UNTRAINED))
            rollouts.append(hold_rollout(layout, dataset, e, options, chunk))
            if options.humanoid_groot:
                bar.set_postfix_str(f"episode {e} humanoid_groot")
                their_rollouts(runtime, dataset, e, options, bar, theirs)
    span = runtime.stats.action.max - runtime.stats.action.min
    header = {"checkpoint": str(runtime.info.path), "dataset_root": str(dataset.root), "layout": layout.name,
              "episodes": episodes, "action_chunk_size": options.action_chunk_size, "seed": options.seed,
              "task_override": options.task, "fps": dataset.fps, "inference_calls": calls,
              "seconds": round(time.perf_counter() - t0, 2)}
    metrics = build_metrics(rollouts, layout, span, header)
    if theirs:
        from groot_ros.tools.eval_theirs import score

        metrics["humanoid_groot"] = {v: score(v, np.concatenate([p for p, _ in runs]), np.concatenate(
            [t for _, t in runs]), span).as_dict(layout.action_names) for v, runs in theirs.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "ablation.txt").write_text(ablation_table(metrics, layout) + "\n")
    (out / "chunk_rows.txt").write_text(row_table(metrics) + "\n")
    figures = write_figures(out, rollouts, layout, dataset.fps, metrics) if options.plots else []
    return EvalResult(out_dir=out, metrics=metrics, rollouts=tuple(rollouts), figures=tuple(figures))


def summary(result: EvalResult, layout: Layout) -> str:
    """The one-screen report printed at the end."""
    m = result.metrics
    lines = [f"eval-dataset: {m['checkpoint']}",
             f"  on {m['dataset_root']}, episodes {m['episodes']}, K={m['action_chunk_size']} of each chunk, "
             f"{m['inference_calls']} inference calls in {m['seconds']:.1f} s", "",
             ablation_table(m, layout), "", "error per chunk row (% of the action range):", row_table(m), ""]
    if "humanoid_groot" in m:
        from groot_ros.tools.eval_theirs import their_table

        lines += [their_table(m["humanoid_groot"], len(next(iter(m["per_row_range_mae"].values())))), ""]
    lines.append(f"metrics: {result.out_dir / 'metrics.json'}  table: {result.out_dir / 'ablation.txt'}")
    if result.figures:
        lines.append(f"figures: {result.out_dir / 'plots'}/ ({len(result.figures) - 2} PNG), "
                     f"{result.out_dir / 'ablation.png'} and {result.out_dir / 'chunk_rows.png'}")
    return "\n".join(lines)
