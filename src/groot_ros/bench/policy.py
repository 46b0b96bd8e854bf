"""Side-by-side timing of the stock LeRobot GR00T path and groot_ros's optimized path, per stage, in one process.

Stock: policy.stock.StockEngine, the node's stock path (LeRobot's preprocessor pipeline and
GrootPolicy.predict_action_chunk, fp32 weights; with --dtype bfloat16 LeRobot's own autocast, as `use_bf16=True`
runs it; then the whole chunk de-normalized). Ours: policy.fast.FastEngine on the same checkpoint, observation and
seed. Both report their stages through the same StageClock.

Each path is loaded, warmed up, timed and freed before the next, so its peak memory is its own. Every timed call
is made twice: once plain (end to end, no extra synchronisation) and once with a device sync at each stage
boundary (the stage split). p50/p99 are over the timed calls after warm-up. Ours is also timed unseeded (fresh
noise every call, the way the node calls it), and with `profile` the device kernels of a few calls are summed per
kernel family (matrix products, attention, normalization, ...) to show where the time goes.
"""

from __future__ import annotations

import datetime
import gc
import json
import re
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from groot_ros.policy.base import ChunkPolicy, StageClock
from groot_ros.policy.fast import FastOptions, fast_engine

STAGES = ("preprocess", "backbone", "action_head", "denormalize")
ABLATION = ("bf16_weights", "gpu_preprocess", "skip_lm_head", "kv_cache")
# Extra rows of ours: cfg.options plus these switched on ("compile+cuda_graphs": both).
EXTRAS = ("cuda_graphs", "compile", "compile+cuda_graphs")
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
    also: tuple[str, ...] = ()  # extra rows of ours with more options on, from EXTRAS
    profile: int = 0  # calls per path to profile per kernel family (0: none)


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
    fresh_noise: Stat | None = None  # end to end unseeded (fresh noise per call, as the node calls it); ours only
    profile: dict[str, Any] | None = None  # kernel_profile() of a few calls
    normalized: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    chunk: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    checkpoint: Path
    device_name: str
    parameters: int
    paths: list[PathResult]
    environment: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # variants that raised: name -> error

    @property
    def stock(self) -> PathResult:
        return self.paths[0]

    def ratio(self, path: PathResult) -> float:
        return self.stock.end_to_end.p50 / path.end_to_end.p50

    def tolerance(self) -> float:
        return TOLERANCE[(self.config.dtype, "cuda" if self.config.device.startswith("cuda") else "cpu")]

    def passed(self) -> bool:
        return not self.failed and all(p.rel_error is not None and p.rel_error <= self.tolerance()
                                       for p in self.paths[1:])


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


def _time_path(name: str, engine: ChunkPolicy, options: list[str], cfg: BenchConfig, device: Device, obs: Any,
               unseeded: bool = False) -> PathResult:
    """Times one engine: plain calls end to end, then calls whose stage clock synchronises the device."""
    predict = engine.predict
    for _ in range(cfg.warmup):
        predict(obs, cfg.seed)
    e2e, staged = [], []
    for _ in range(cfg.iters):
        device.sync()
        t0 = time.perf_counter()
        predict(obs, cfg.seed)
        device.sync()
        e2e.append((time.perf_counter() - t0) * 1e3)
        staged.append(engine.predict(obs, cfg.seed, clock=StageClock(device.sync)).timings.stages_ms)
    fresh = None
    if unseeded:
        fresh = []
        for _ in range(cfg.iters):
            device.sync()
            t0 = time.perf_counter()
            predict(obs, None)
            device.sync()
            fresh.append((time.perf_counter() - t0) * 1e3)
    profile = kernel_profile(lambda: predict(obs, cfg.seed), device, cfg.profile) if cfg.profile > 0 else None
    out = predict(obs, cfg.seed)
    peak, kind = device.peak_mb()
    names = [s for s in (*STAGES, "other") if any(s in t for t in staged)]
    stages = {s: Stat.of([t.get(s, 0.0) for t in staged]) for s in names}
    return PathResult(name, options, stages, Stat.of(e2e), peak, kind, normalized=out.normalized, chunk=out.chunk,
                      fresh_noise=Stat.of(fresh) if fresh else None, profile=profile)


# Kernel families, first match wins (names of cuBLAS/CUTLASS/cuDNN/flash/Triton/ATen kernels as the profiler
# reports them).
KERNEL_FAMILIES = (
    ("attention", r"flash|fmha|attention|_attn|sdpa|cudnn.*(mha|sdp)"),
    ("matmul", r"gemm|gemv|cutlass|xmma|nvjet|cublas|matmul|\bmm_|splitk|Kernel2"),
    ("triton (fused)", r"^triton_"),
    ("norm", r"norm|rms"),
    ("softmax/reduce", r"softmax|reduce|welford"),
    ("image resize", r"upsample|interp|bicubic|bilinear|aa_"),
    ("copy/cast/index", r"memcpy|memset|copy|cat|index|gather|scatter|fill|arange|embedding|contiguous"),
    ("elementwise", r"elementwise|vectorized|unrolled|activation|gelu|silu|mul|add|pow|exp|sin|cos|where|clamp"),
)


def kernel_family(name: str) -> str:
    for family, pattern in KERNEL_FAMILIES:
        if re.search(pattern, name, re.IGNORECASE):
            return family
    return "other"


def kernel_profile(call: Callable[[], Any], device: "Device", calls: int) -> dict[str, Any]:
    """Device time per call, summed per kernel family over `calls` profiled calls, against the wall time.

    busy_ms: kernels and copies on the device per call; wall_ms: the calls' wall time under the profiler (which
    adds some host overhead); the difference is time the device waited for the host (launches, Python, syncs).
    Kernels replayed from a CUDA graph are reported when the profiler (CUPTI) records them; `kernels` counts what
    it saw.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.cuda else [])
    call()
    device.sync()
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        device.sync()
        wall = (time.perf_counter() - t0) * 1e3 / calls
    families: dict[str, float] = {}
    top: dict[str, list[float]] = {}
    kernels = 0
    for evt in prof.events():
        if getattr(evt, "device_type", None) != torch.autograd.DeviceType.CUDA:
            continue
        us = float(evt.time_range.elapsed_us())  # a device event's own span: the kernel or copy
        kernels += 1
        fam = kernel_family(evt.name)
        families[fam] = families.get(fam, 0.0) + us / 1e3 / calls
        entry = top.setdefault(evt.name, [0.0, 0])
        entry[0] += us / 1e3 / calls
        entry[1] += 1
    busy = sum(families.values())
    ranked = sorted(top.items(), key=lambda kv: -kv[1][0])[:25]
    return {"calls": calls, "wall_ms": wall, "busy_ms": busy, "kernels_per_call": kernels / calls,
            "families_ms": dict(sorted(families.items(), key=lambda kv: -kv[1])),
            "top_kernels": [{"name": n[:160], "ms_per_call": v[0], "launches_per_call": v[1] / calls,
                             "family": kernel_family(n)} for n, v in ranked]}


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
    for extra in cfg.also:
        names = extra.split("+")
        if extra not in EXTRAS:
            raise ValueError(f"unknown extra variant '{extra}'; known: {', '.join(EXTRAS)}")
        runs.append((f"ours +{extra}", replace(cfg.options, **{n: True for n in names})))
    return runs


def environment(device: "Device") -> dict[str, str]:
    """Versions and date the numbers were taken with."""
    import platform
    from importlib import metadata

    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "python": platform.python_version(), "torch": device.torch.__version__}
    for dist in ("transformers", "lerobot", "diffusers"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "missing"
    if device.cuda:
        env["cuda"] = str(device.torch.version.cuda)
        props = device.torch.cuda.get_device_properties(device.name)
        env["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    return env


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda _: None) -> BenchReport:
    from groot_ros.policy.tiny import synthetic_observation
    from groot_ros.core.layout import load_layout
    from groot_ros.policy.runtime import LoadedCheckpoint
    from groot_ros.policy.stock import StockEngine

    layout = load_layout(cfg.layout, cfg.robot, cfg.topics)
    device = Device(cfg.device)
    checkpoint = prepare_checkpoint(cfg, layout)
    obs = synthetic_observation(layout)

    def load(dtype: str) -> LoadedCheckpoint:
        # weights in `dtype`, compute in cfg.dtype: bf16 compute on fp32 weights is LeRobot's autocast mode
        loaded = LoadedCheckpoint.load(checkpoint, layout, device=cfg.device, dtype=dtype, attention=cfg.attention)
        return replace(loaded, dtype=cfg.dtype)

    log(f"stock LeRobot path on {cfg.device}/{cfg.dtype} ...")
    device.reset_peak()
    loaded = load("float32")
    parameters = sum(p.numel() for p in loaded.policy.parameters())
    if cfg.dtype == "bfloat16":  # LeRobot's inference mode: fp32 weights, bf16 autocast (use_bf16=True)
        loaded.policy.config.use_bf16 = True
        loaded.policy._groot_model.compute_dtype = loaded.policy._groot_model.config.compute_dtype = "bfloat16"
    stock = _time_path("stock", StockEngine(loaded), [], cfg, device, obs)
    log(summary_line(stock))
    del loaded
    paths = [stock]
    failed: dict[str, str] = {}
    for name, options in variants(cfg):
        log(f"{name}: {', '.join(options.enabled()) or 'nothing'} ...")
        device.reset_peak()
        bf16_weights = cfg.dtype == "bfloat16" and options.bf16_weights
        engine = None
        try:
            engine = fast_engine(load("bfloat16" if bf16_weights else "float32"), options)
            result = _time_path(name, engine, options.enabled(), cfg, device, obs, unseeded=True)
            paths.append(replace(result, rel_error=_rel(result.normalized, stock.normalized),
                                 rel_error_robot=_rel(result.chunk, stock.chunk)))
            log(summary_line(paths[-1], stock))  # as it comes: a run cut short still leaves its finished rows
        except Exception as exc:  # noqa: BLE001 - one variant failing (a capture, a compile) must not lose the rest
            failed[name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} FAILED:\n{traceback.format_exc()}")
            del exc
        finally:
            del engine
            if options.compile:
                import torch

                torch._dynamo.reset()  # compiled code holds the engine (and its weights) otherwise
    return BenchReport(cfg, checkpoint, device.describe(), parameters, paths, environment(device), failed)


def summary_line(path: PathResult, stock: PathResult | None = None) -> str:
    """One path's end to end, stages (p50) and peak memory, logged as soon as it is timed."""
    stages = ", ".join(f"{name} {stat.p50:.2f}" for name, stat in path.stages.items())
    line = (f"{path.name}: end to end p50 {path.end_to_end.p50:.2f} p99 {path.end_to_end.p99:.2f} ms ({stages}); "
            f"peak {path.peak_memory_mb:.0f} MB")
    if path.fresh_noise is not None:
        line += f"; fresh noise p50 {path.fresh_noise.p50:.2f} p99 {path.fresh_noise.p99:.2f} ms"
    if stock is not None:
        line += f"; {stock.end_to_end.p50 / path.end_to_end.p50:.2f}x stock; rel. error {path.rel_error:.1e}"
    return line


def format_report(report: BenchReport) -> str:
    cfg = report.config
    stages = [s for s in (*STAGES, "other") if any(s in p.stages for p in report.paths)]
    width = max(12, *(len(p.name) + 2 for p in report.paths))
    lines = [f"GR00T N1.5 inference, {cfg.size if cfg.checkpoint is None else 'checkpoint'} model "
             f"({report.parameters / 1e6:,.1f} M parameters) on {report.device_name}, {cfg.dtype}, "
             f"{cfg.warmup} warm-up + {cfg.iters} timed calls; ms p50 / p99",
             f"  checkpoint: {report.checkpoint}",
             "  " + ", ".join(f"{k} {v}" for k, v in report.environment.items()),
             "  " + "path".ljust(width) + "".join(s.rjust(18) for s in (*stages, "end_to_end", "fresh_noise"))
             + "  peak MB".rjust(11) + "  x stock".rjust(9) + "  rel.err".rjust(10)]
    for p in report.paths:
        cells = [p.stages.get(s) for s in stages] + [p.end_to_end, p.fresh_noise]
        row = "".join((f"{c.p50:8.2f} / {c.p99:7.2f}" if c else "-".rjust(18)) for c in cells)
        err = "-" if p.rel_error is None else f"{p.rel_error:.1e}"
        lines.append("  " + p.name.ljust(width) + row + f"{p.peak_memory_mb:11.0f}" + f"{report.ratio(p):9.2f}"
                     + err.rjust(10))
    kinds = {p.memory_kind for p in report.paths}
    lines.append(f"  peak memory: {', '.join(sorted(kinds))}; stage columns come from stage-synchronised calls, "
                 "end_to_end from plain ones (same seed), fresh_noise from plain unseeded ones; 'other' is the stock "
                 "path's glue between stages")
    profiled = [p for p in report.paths if p.profile]
    if profiled:
        families = list(dict.fromkeys(f for p in profiled for f in p.profile["families_ms"]))
        lines.append("  device time per call by kernel family, ms (profiled calls; wall includes profiler overhead)")
        lines.append("  " + "path".ljust(width) + "".join(f[:14].rjust(15) for f in (*families, "busy", "wall"))
                     + "kernels".rjust(9))
        for p in profiled:
            prof = p.profile
            cells = [prof["families_ms"].get(f, 0.0) for f in families] + [prof["busy_ms"], prof["wall_ms"]]
            lines.append("  " + p.name.ljust(width) + "".join(f"{c:15.3f}" for c in cells)
                         + f"{prof['kernels_per_call']:9.0f}")
    for ours in [p for p in report.paths[1:] if p.name.startswith("ours")]:
        verdict = "within" if ours.rel_error is not None and ours.rel_error <= report.tolerance() else "OUTSIDE"
        lines.append(f"  {ours.name}: {', '.join(ours.options)} -> {report.ratio(ours):.2f}x the stock end to end; "
                     f"outputs {verdict} tolerance {report.tolerance():.0e} (relative error, same seed; "
                     f"robot units {ours.rel_error_robot:.1e})")
    for name, error in report.failed.items():
        lines.append(f"  {name}: FAILED: {error}")
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
            "parameters": report.parameters, "environment": report.environment,
            "tolerance": report.tolerance(), "passed": report.passed(), "failed": report.failed,
            "paths": [path(p) for p in report.paths]}


def write_json(report: BenchReport, out: Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report_json(report), indent=2) + "\n")
