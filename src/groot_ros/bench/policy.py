"""Side-by-side timing of the stock LeRobot GR00T path and groot_ros's optimized path, per stage, in one process.

Stock: LeRobot's preprocessor pipeline, GrootPolicy.predict_action_chunk (fp32 weights; with --dtype bfloat16
LeRobot's own autocast, as `use_bf16=True` runs it), then the chunk copied to the host and de-normalized with the
checkpoint's min/max. Ours: policy.fast.FastEngine on the same checkpoint, observation and seed.

Each path is loaded, warmed up, timed and freed before the next, so its peak memory is its own. Every timed call
is made twice: once plain (end to end, no extra synchronisation) and once with a device sync at each stage
boundary (the stage split). p50/p99 are over the timed calls after warm-up.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from groot_ros.policy.base import Prediction
from groot_ros.policy.fast import FastOptions, optimize_runtime

STAGES = ("preprocess", "backbone", "action_head", "denormalize")
ABLATION = ("bf16_weights", "gpu_preprocess", "skip_lm_head", "kv_cache")
# Relative error of ours vs stock allowed on the normalized chunk. fp32 on a GPU: our images are resized there in
# float (as torchvision does on a GPU) while the stock pipeline resizes them on the CPU with its fixed-point uint8
# kernel, up to one uint8 step apart; on the CPU both use that kernel and agree bit for bit.
TOLERANCE = {("float32", "cpu"): 1e-5, ("float32", "cuda"): 1e-4, ("bfloat16", "cpu"): 1e-2, ("bfloat16", "cuda"): 1e-2}


@dataclass(frozen=True)
class BenchConfig:
    size: str = "tiny"
    checkpoint: Path | None = None  # a real pretrained_model/ dir instead of a random-weight model
    workdir: Path = Path("artifacts/bench")
    device: str = "cpu"
    dtype: str = "float32"
    attention: str = "auto"
    warmup: int = 3
    iters: int = 20
    seed: int = 0
    layout: str = "depalletize"
    robot: str = "4_pro"
    topics: str = "sim"
    options: FastOptions = FastOptions()
    ablation: bool = False  # also time ours with the speed-ups switched on one at a time


@dataclass(frozen=True)
class Stat:
    p50: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> "Stat":
        a = np.asarray(samples_ms)
        return cls(float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.mean()))


@dataclass(frozen=True)
class PathResult:
    name: str
    options: list[str]
    stages: dict[str, Stat]  # from the stage-synchronised calls; "other" is the stock path's glue code
    end_to_end: Stat  # from the plain calls
    peak_memory_mb: float
    memory_kind: str  # "cuda max_memory_allocated" or "process RSS"
    rel_error: float | None = None  # ||ours - stock|| / ||stock|| on the normalized chunk
    rel_error_robot: float | None = None  # the same in robot units
    normalized: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    chunk: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    checkpoint: Path
    device_name: str
    parameters: int
    paths: list[PathResult]

    @property
    def stock(self) -> PathResult:
        return self.paths[0]

    def ratio(self, path: PathResult) -> float:
        return self.stock.end_to_end.p50 / path.end_to_end.p50

    def tolerance(self) -> float:
        return TOLERANCE[(self.config.dtype, "cuda" if self.config.device.startswith("cuda") else "cpu")]

    def passed(self) -> bool:
        return all(p.rel_error is not None and p.rel_error <= self.tolerance() for p in self.paths[1:])


class StageTimer:
    """Time since the previous mark, per stage name; synchronises the device at each mark."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync
        self.ms: dict[str, float] = {}
        self.sync()
        self.last = time.perf_counter()

    def mark(self, stage: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1e3
        self.last = now


class Device:
    def __init__(self, name: str):
        import torch

        self.name = name
        self.cuda = name.startswith("cuda")
        self.torch = torch

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.name)

    def describe(self) -> str:
        if self.cuda:
            return self.torch.cuda.get_device_name(self.name)
        import platform

        return f"CPU ({platform.processor() or platform.machine()}, {self.torch.get_num_threads()} threads)"

    def reset_peak(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.name)

    def peak_mb(self) -> tuple[float, str]:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated(self.name) / 2**20, "cuda max_memory_allocated"
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss / 1024, "process RSS"


@contextlib.contextmanager
def stock_stage_marks(policy: Any, timer: StageTimer) -> Iterator[None]:
    """Marks the backbone and the action head inside an unmodified predict_action_chunk (instance wrappers only)."""
    model = policy._groot_model
    backbone_forward, get_action = model.backbone.forward, model.action_head.get_action

    def timed(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            timer.mark("other")
            out = fn(*args, **kwargs)
            timer.mark(stage)
            return out
        return call

    model.backbone.forward = timed(backbone_forward, "backbone")
    model.action_head.get_action = timed(get_action, "action_head")
    try:
        yield
    finally:
        del model.backbone.forward, model.action_head.get_action


def stock_predict(runtime: Any, obs: Any, seed: int, timer: Any = None) -> Prediction:
    """The stock path: LeRobot's pipeline and predict_action_chunk, then a whole-chunk de-normalization."""
    import torch

    stage_marks = stock_stage_marks(runtime.policy, timer) if timer else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[torch.device(runtime.device)] if runtime.device.startswith("cuda") else []):
        torch.manual_seed(seed)
        batch = runtime.preprocessor(runtime.batch_for(obs))
        if timer:
            timer.mark("preprocess")
        with stage_marks:
            chunk = runtime.policy.predict_action_chunk(batch)
        normalized = chunk[0].float().cpu().numpy().astype(np.float64)
        robot = runtime.stats.action.denormalize(normalized)
    if timer:
        timer.mark("denormalize")
    return Prediction(normalized=normalized, chunk=robot)


def _time_path(name: str, predict: Callable[..., Prediction], options: list[str], cfg: BenchConfig,
               device: Device, obs: Any) -> PathResult:
    for _ in range(cfg.warmup):
        predict(obs, cfg.seed)
    e2e, staged = [], []
    for _ in range(cfg.iters):
        device.sync()
        t0 = time.perf_counter()
        predict(obs, cfg.seed)
        device.sync()
        e2e.append((time.perf_counter() - t0) * 1e3)
        timer = StageTimer(device.sync)
        predict(obs, cfg.seed, timer)
        staged.append(timer.ms)
    out = predict(obs, cfg.seed)
    peak, kind = device.peak_mb()
    names = [s for s in (*STAGES, "other") if any(s in t for t in staged)]
    stages = {s: Stat.of([t.get(s, 0.0) for t in staged]) for s in names}
    return PathResult(name, options, stages, Stat.of(e2e), peak, kind, normalized=out.normalized, chunk=out.chunk)


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-12))


def prepare_checkpoint(cfg: BenchConfig, layout: Any) -> Path:
    """The checkpoint to time: the given one, or a random-weight model of the requested size (made once)."""
    if cfg.checkpoint is not None:
        return Path(cfg.checkpoint)
    from groot_ros.bench.full_model import MODEL_SIZES, write_checkpoint

    root = Path(cfg.workdir) / f"{cfg.size}_{layout.name}"
    if not (root / "pretrained_model" / "model.safetensors").is_file():
        write_checkpoint(root, layout, MODEL_SIZES[cfg.size], seed=cfg.seed,
                         save_dtype="bfloat16" if cfg.size == "full" else "float32")
    return root / "pretrained_model"


def variants(cfg: BenchConfig) -> list[tuple[str, FastOptions]]:
    """Ours with cfg.options; with ablation, first each of the exact speed-ups alone."""
    runs = []
    if cfg.ablation:
        none = FastOptions(**{name: False for name in FastOptions.__dataclass_fields__})
        for name in ABLATION:
            if name == "bf16_weights" and cfg.dtype != "bfloat16":
                continue
            runs.append((f"only {name}", replace(none, **{name: True})))
    runs.append(("ours", cfg.options))
    return runs


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda _: None) -> BenchReport:
    from groot_ros.testing.synthetic import synthetic_observation
    from groot_ros.core.layout import load_layout
    from groot_ros.policy.runtime import GrootRuntime

    layout = load_layout(cfg.layout, cfg.robot, cfg.topics)
    device = Device(cfg.device)
    checkpoint = prepare_checkpoint(cfg, layout)
    obs = synthetic_observation(layout)

    def load(dtype: str) -> Any:
        return GrootRuntime.load(checkpoint, layout, device=cfg.device, dtype=dtype, attention=cfg.attention)

    log(f"stock LeRobot path on {cfg.device}/{cfg.dtype} ...")
    device.reset_peak()
    runtime = load("float32")
    parameters = sum(p.numel() for p in runtime.policy.parameters())
    if cfg.dtype == "bfloat16":  # LeRobot's inference mode: fp32 weights, bf16 autocast (use_bf16=True)
        runtime.policy.config.use_bf16 = True
        runtime.policy._groot_model.compute_dtype = runtime.policy._groot_model.config.compute_dtype = "bfloat16"
    stock = _time_path("stock", lambda o, s, t=None: stock_predict(runtime, o, s, t), [], cfg, device, obs)
    del runtime
    paths = [stock]
    for name, options in variants(cfg):
        log(f"{name}: {', '.join(options.enabled()) or 'nothing'} ...")
        device.reset_peak()
        bf16_weights = cfg.dtype == "bfloat16" and options.bf16_weights
        runtime = load("bfloat16" if bf16_weights else "float32")
        runtime.dtype = cfg.dtype  # bf16 compute on fp32 weights (autocast) when bf16 weights are switched off
        engine = optimize_runtime(runtime, options)
        result = _time_path(name, lambda o, s, t=None: engine.predict(o, s, t), options.enabled(), cfg, device, obs)
        paths.append(replace(result, rel_error=_rel(result.normalized, stock.normalized),
                             rel_error_robot=_rel(result.chunk, stock.chunk)))
        del engine, runtime
    return BenchReport(cfg, checkpoint, device.describe(), parameters, paths)


def format_report(report: BenchReport) -> str:
    cfg = report.config
    stages = [s for s in (*STAGES, "other") if any(s in p.stages for p in report.paths)]
    width = max(12, *(len(p.name) + 2 for p in report.paths))
    lines = [f"GR00T N1.5 inference, {cfg.size if cfg.checkpoint is None else 'checkpoint'} model "
             f"({report.parameters / 1e6:,.1f} M parameters) on {report.device_name}, {cfg.dtype}, "
             f"{cfg.warmup} warm-up + {cfg.iters} timed calls; ms p50 / p99",
             f"  checkpoint: {report.checkpoint}",
             "  " + "path".ljust(width) + "".join(s.rjust(18) for s in (*stages, "end_to_end"))
             + "  peak MB".rjust(11) + "  x stock".rjust(9) + "  rel.err".rjust(10)]
    for p in report.paths:
        cells = [p.stages.get(s) for s in stages] + [p.end_to_end]
        row = "".join((f"{c.p50:8.2f} / {c.p99:7.2f}" if c else "-".rjust(18)) for c in cells)
        err = "-" if p.rel_error is None else f"{p.rel_error:.1e}"
        lines.append("  " + p.name.ljust(width) + row + f"{p.peak_memory_mb:11.0f}" + f"{report.ratio(p):9.2f}"
                     + err.rjust(10))
    kinds = {p.memory_kind for p in report.paths}
    lines.append(f"  peak memory: {', '.join(sorted(kinds))}; stage columns come from stage-synchronised calls, "
                 "end_to_end from plain ones; 'other' is the stock path's glue between stages")
    ours = report.paths[-1]
    verdict = "within" if report.passed() else "OUTSIDE"
    lines.append(f"  ours: {', '.join(ours.options)} -> {report.ratio(ours):.2f}x the stock end to end; "
                 f"outputs {verdict} tolerance {report.tolerance():.0e} (relative error, same seed; "
                 f"robot units {ours.rel_error_robot:.1e})")
    return "\n".join(lines)


def report_json(report: BenchReport) -> dict:
    def path(p: PathResult) -> dict:
        d = {k: v for k, v in asdict(p).items() if k not in ("normalized", "chunk")}
        d["ratio_vs_stock"] = report.ratio(p)
        return d

    cfg = asdict(report.config)
    cfg["checkpoint"] = str(cfg["checkpoint"]) if cfg["checkpoint"] else None
    cfg["workdir"] = str(cfg["workdir"])
    return {"config": cfg, "checkpoint": str(report.checkpoint), "device": report.device_name,
            "parameters": report.parameters, "tolerance": report.tolerance(), "passed": report.passed(),
            "paths": [path(p) for p in report.paths]}


def write_json(report: BenchReport, out: Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report_json(report), indent=2) + "\n")
