"""Command-line entry points. Each command is a thin wrapper over a ROS-free module."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_TASK = "Depalletize the boxes: pick the top box and place it on the conveyor."


def _add_layout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="depalletize", help="layout name in config/layouts or a YAML path")
    p.add_argument("--robot", default="4_pro", help="robot version (config/robots): 4_pro or 5_wheel")
    p.add_argument("--topics", default="sim", help="topic set (config/topics): sim or real")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    _add_layout_args(p)
    p.add_argument("--checkpoint", required=True, help="a LeRobot GR00T pretrained_model/ directory")
    p.add_argument("--base-config", help="GR00T N1.5 base config.json (default: searched beside the checkpoint "
                                         "and in the local Hugging Face cache)")
    p.add_argument("--eagle-assets", help="Eagle tokenizer/processor assets directory (default: searched)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--attention", default="auto", choices=("auto", "sdpa", "flash_attention_2"))


def _load_runtime(args: argparse.Namespace):
    from groot_ros.layout import load_layout
    from groot_ros.runtime import GrootRuntime

    layout = load_layout(args.layout, args.robot, args.topics)
    return GrootRuntime.load(args.checkpoint, layout, base_config=args.base_config, eagle_assets=args.eagle_assets,
                             device=args.device, dtype=args.dtype, attention=args.attention)


def synthetic_observation(layout, seed: int = 0, task: str = DEFAULT_TASK):
    """A plausible observation: state at the middle of the layout's ranges, random 480x640 camera images."""
    from groot_ros.observation import Observation
    from groot_ros.tiny_checkpoint import default_stats

    rng = np.random.default_rng(seed)
    stats = default_stats(layout)["observation.state"]
    state = (stats["min"] + stats["max"]) / 2.0
    images = {k: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for k in layout.camera_keys}
    return Observation(state=state.astype(np.float64), images=images, task=task)


def cmd_make_tiny_checkpoint(args: argparse.Namespace) -> int:
    from groot_ros.layout import load_layout
    from groot_ros.tiny_checkpoint import make_tiny_checkpoint, parameter_count

    layout = load_layout(args.layout, args.robot, args.topics)
    tiny = make_tiny_checkpoint(args.out, layout, seed=args.seed)
    print(f"tiny GR00T checkpoint ({parameter_count(tiny.pretrained_model):,} parameters, layout '{layout.name}', "
          f"state {layout.state_dim}, action {layout.action_dim}) written to:\n"
          f"  {tiny.pretrained_model}\n  {tiny.base_model}/config.json\n  {tiny.eagle_assets}/")
    return 0


def _predict_and_print(runtime, obs, seed: int | None, repeats: int) -> None:
    from groot_ros.chunk_table import format_chunk

    chunk = runtime.predict_chunk(obs, seed=seed)
    timings = [runtime.last_timings]
    for _ in range(repeats - 1):
        runtime.predict_chunk(obs, seed=seed)
        timings.append(runtime.last_timings)
    print(format_chunk(chunk, runtime.layout))
    t = timings[-1] if repeats > 1 else timings[0]
    print(f"\ntimings ({'after warm-up' if repeats > 1 else 'first call'}, {runtime.device}/{runtime.dtype}, "
          f"{runtime.attention.implementation} attention): preprocess {t.preprocess_ms:.1f} ms, "
          f"model {t.model_ms:.1f} ms, de-normalize {t.denormalize_ms:.2f} ms, total {t.total_ms:.1f} ms")


def cmd_predict(args: argparse.Namespace) -> int:
    runtime = _load_runtime(args)
    _predict_and_print(runtime, synthetic_observation(runtime.layout, task=args.task), args.seed, args.repeats)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: record -> dataset -> train -> evaluate -> closed loop -> report, all offline."""
    from groot_ros.demo_pipeline import DemoConfig, run_demo

    run_demo(DemoConfig(out=Path(args.out), episodes=args.episodes, episode_seconds=args.episode_seconds,
                        train_steps=args.train_steps, closed_loop_seconds=args.closed_loop_seconds, seed=args.seed,
                        task=args.task))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The smallest check: tiny checkpoint -> load offline -> one de-normalized chunk."""
    from groot_ros.layout import load_layout
    from groot_ros.runtime import GrootRuntime
    from groot_ros.tiny_checkpoint import make_tiny_checkpoint, parameter_count

    out = Path(args.out)
    layout = load_layout(args.layout, args.robot, args.topics)
    t0 = time.perf_counter()
    tiny = make_tiny_checkpoint(out / "tiny_checkpoint", layout, seed=args.seed)
    t1 = time.perf_counter()
    runtime = GrootRuntime.load(tiny.pretrained_model, layout)
    t2 = time.perf_counter()
    print(f"\n[quickstart] tiny GR00T N1.5-architecture checkpoint: {parameter_count(tiny.pretrained_model):,} parameters, "
          f"built in {t1 - t0:.1f} s -> {tiny.pretrained_model}")
    print(f"[quickstart] loaded offline in {t2 - t1:.1f} s ({runtime.attention.implementation}: {runtime.attention.reason}); "
          f"layout '{layout.name}' ({layout.robot.version}): state {layout.state_dim} = "
          + " + ".join(f"{c.name}:{c.dim}" for c in layout.state)
          + f", action {layout.action_dim} = " + " + ".join(f"{c.name}:{c.dim}" for c in layout.action))
    print(f"[quickstart] task: {args.task!r}; cameras: {', '.join(layout.camera_keys)} (synthetic 480x640)\n")
    _predict_and_print(runtime, synthetic_observation(layout, task=args.task), args.seed, repeats=5)
    print("\n[quickstart] every row of the 16-step chunk is de-normalized with the checkpoint's dataset min/max "
          "(Right_claw has max == min in these stats, so it is its min).")
    return 0


def cmd_record_demos(args: argparse.Namespace) -> int:
    from groot_ros.record_demos import RecordError, RecordOptions, record

    options = RecordOptions(out=Path(args.out), episodes=args.episodes, seconds=args.seconds, task=args.task,
                            seed=args.seed, layout=args.layout, robot=args.robot, topics=args.topics,
                            image_size=tuple(args.image_size) if args.image_size else None, master_uri=args.master_uri)
    try:
        record(options)
    except (RecordError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_bench_policy(args: argparse.Namespace) -> int:
    """Stock LeRobot path vs ours, per stage, same inputs and seed (src/groot_ros/bench, docs/inference_speed.md)."""
    from dataclasses import replace

    from groot_ros.bench.harness import BenchConfig, format_report, run_bench, write_json
    from groot_ros.fast_inference import FastOptions

    options = replace(FastOptions(compile=args.compile, cuda_graphs=args.cuda_graphs),
                      **{name: False for name in args.disable})
    cfg = BenchConfig(size=args.size, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      workdir=Path(args.workdir), device=args.device, dtype=args.dtype, attention=args.attention,
                      warmup=args.warmup, iters=args.iters, seed=args.seed, layout=args.layout, robot=args.robot,
                      topics=args.topics, options=options, ablation=args.ablation)
    report = run_bench(cfg, log=lambda line: print(f"[bench] {line}", file=sys.stderr))
    print(format_report(report))
    if args.json:
        write_json(report, Path(args.json))
    return 0 if report.passed() else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m groot_ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    from groot_ros.offline_cli import add_offline_commands  # bag2lerobot, eval-dataset, convert-v21, train

    add_offline_commands(sub)

    p = sub.add_parser("make-tiny-checkpoint", help="write a tiny GR00T-architecture checkpoint (random weights)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    _add_layout_args(p)
    p.set_defaults(func=cmd_make_tiny_checkpoint)

    p = sub.add_parser("predict", help="load a checkpoint and predict one chunk from a synthetic observation")
    _add_runtime_args(p)
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="calls to time (the first warms up)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("quickstart", help="tiny checkpoint -> offline load -> one de-normalized chunk, in seconds")
    _add_layout_args(p)
    p.add_argument("--out", default="artifacts/quickstart")
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_quickstart)

    from groot_ros.demo_pipeline import DemoConfig

    d = DemoConfig()
    p = sub.add_parser("demo", help="the whole pipeline on the stand-in sim, with a report (what `make demo` runs)")
    p.add_argument("--out", default=str(d.out))
    p.add_argument("--episodes", type=int, default=d.episodes, help="recorded episodes; the last is held out")
    p.add_argument("--episode-seconds", type=float, default=d.episode_seconds)
    p.add_argument("--train-steps", type=int, default=d.train_steps)
    p.add_argument("--closed-loop-seconds", type=float, default=d.closed_loop_seconds)
    p.add_argument("--task", default=d.task)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("record-demos", help="record scripted depalletize demonstrations on the stand-in sim as "
                                            "rosbags (one per episode) with a bag2lerobot --task-map")
    _add_layout_args(p)
    p.add_argument("--out", required=True, help="folder for episode_NNN.bag, tasks.json, episodes.json")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=12.0, help="length of each episode (>= 10)")
    p.add_argument("--seed", type=int, default=0, help="episode k's variation comes from (seed, k)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="camera size (default: config/sim.yaml)")
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--master-uri", help="use this ROS master (default: a private roscore on a free port)")
    p.set_defaults(func=cmd_record_demos)

    p = sub.add_parser("bench-policy", help="time the stock LeRobot path and ours per stage, check equal outputs")
    _add_layout_args(p)
    p.add_argument("--size", default="tiny", choices=("tiny", "full"),
                   help="random-weight model to build (full: GR00T N1.5 dimensions, ~2.7B parameters; GPU)")
    p.add_argument("--checkpoint", help="time this pretrained_model/ dir instead of a random-weight model")
    p.add_argument("--workdir", default="artifacts/bench", help="where random-weight models are written (once)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--attention", default="auto", choices=("auto", "sdpa", "flash_attention_2"))
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablation", action="store_true", help="also time each speed-up alone")
    p.add_argument("--disable", action="append", default=[],
                   choices=("bf16_weights", "gpu_preprocess", "skip_lm_head", "kv_cache"),
                   help="switch one of ours' speed-ups off (repeatable)")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone and the action head")
    p.add_argument("--cuda-graphs", action="store_true", help="replay backbone and action head from CUDA graphs")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_bench_policy)

    p = sub.add_parser("bench-node", help="the policy node's control jitter, latency, CPU share and stalls on the "
                                          "stand-in sim (async vs sync)")
    p.add_argument("--checkpoint", help="pretrained_model/ dir (default: a fresh tiny checkpoint)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per mode")
    p.add_argument("--image-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--modes", nargs="+", default=["async", "sync"], choices=("async", "sync"))
    p.add_argument("--fast-inference", action="store_true")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_bench_node)
    return parser


def cmd_bench_node(args: argparse.Namespace) -> int:
    from groot_ros.bench.node_bench import NodeBenchConfig, main_bench_node

    cfg = NodeBenchConfig(checkpoint=Path(args.checkpoint) if args.checkpoint else None, seconds=args.seconds,
                          image_height=args.image_size[0], image_width=args.image_size[1],
                          camera_rate=args.camera_rate, modes=tuple(args.modes), fast_inference=args.fast_inference)
    return main_bench_node(cfg, args.json)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from groot_ros.layout import LayoutError
    from groot_ros.model_assets import AssetError
    from groot_ros.runtime import CheckpointError, ObservationError

    try:
        return args.func(args)
    except (LayoutError, AssetError, CheckpointError, ObservationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
