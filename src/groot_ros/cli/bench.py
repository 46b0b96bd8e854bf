"""Benchmark verbs: bench-policy (stock LeRobot vs ours), bench-node (the node on the stand-in), bench-server (the
policy server's round trip vs in process)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from groot_ros.bench.policy import EXTRAS  # no torch: that module imports it where it runs
from groot_ros.cli.common import add_checkpoint_args, checkpoint_layout


def bench_layout(args: argparse.Namespace):
    """The checkpoint's layout as the node chooses it; without a checkpoint the named one (auto: depalletize)."""
    from groot_ros.core.layout import load_layout

    if args.checkpoint:
        return checkpoint_layout(args)[0]
    return load_layout("depalletize" if args.layout == "auto" else args.layout, args.robot, args.topics)


def cmd_bench_policy(args: argparse.Namespace) -> int:
    """Stock LeRobot path vs ours, per stage, same inputs and seed (src/groot_ros/bench, docs/inference_speed.md)."""
    from dataclasses import replace

    from groot_ros.bench.policy import BenchConfig, format_report, run_bench, write_json
    from groot_ros.policy.fast import FastOptions

    options = replace(FastOptions(compile=args.compile, cuda_graphs=args.cuda_graphs),
                      **{name: False for name in args.disable})
    chosen = bench_layout(args)  # bench.policy loads it again by name (or by the YAML path given)
    layout = chosen.name if args.layout == "auto" else args.layout
    cfg = BenchConfig(size=args.size, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      workdir=Path(args.workdir), device=args.device, dtype=args.dtype, attention=args.attention,
                      warmup=args.warmup, iters=args.iters, seed=args.seed, layout=layout, robot=args.robot,
                      topics=args.topics, options=options, ablation=args.ablation, also=tuple(args.also),
                      profile=args.profile)
    report = run_bench(cfg, log=lambda line: print(f"[bench] {line}", file=sys.stderr))
    print(format_report(report))
    if args.json:
        write_json(report, Path(args.json))
    return 0 if report.passed() else 1


def cmd_bench_node_path(args: argparse.Namespace) -> int:
    """The node's inference worker work (observation build + predict_chunk) without ROS (bench/node_path.py)."""
    import json

    from groot_ros.bench.node_path import NodePathConfig, format_node_path, run_node_path

    layout = bench_layout(args)
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    else:  # the random-weight model bench-policy uses (made once under --workdir)
        from groot_ros.bench.policy import BenchConfig, prepare_checkpoint

        checkpoint = prepare_checkpoint(BenchConfig(size=args.size, workdir=Path(args.workdir)), layout)
    cfg = NodePathConfig(checkpoint=checkpoint, device=args.device, dtype=args.dtype, attention=args.attention,
                         fast_inference=not args.stock, seed=args.seed, warmup=args.warmup, chunks=args.chunks)
    result = run_node_path(cfg, layout)
    print(format_node_path(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_bench_node(args: argparse.Namespace) -> int:
    from groot_ros.bench.node import NodeBenchConfig, main_bench_node

    cfg = NodeBenchConfig(checkpoint=Path(args.checkpoint) if args.checkpoint else None, seconds=args.seconds,
                          image_height=args.image_size[0], image_width=args.image_size[1],
                          camera_rate=args.camera_rate, modes=tuple(args.modes), fast_inference=args.fast_inference,
                          topics=args.topics)
    return main_bench_node(cfg, args.json)


def cmd_bench_server(args: argparse.Namespace) -> int:
    """The policy server's round trip on loopback vs the same engine in process (docs/policy_server.md)."""
    import json

    from groot_ros.bench.server import ServerBenchConfig, format_server_report, run_server_bench

    cfg = ServerBenchConfig(checkpoint=Path(args.checkpoint) if args.checkpoint else None, size=args.size,
                            workdir=Path(args.workdir), device=args.device, dtype=args.dtype, fast=args.fast,
                            cuda_graphs=args.cuda_graphs, calls=args.calls, warmup=args.warmup)
    report = run_server_bench(cfg, log=lambda line: print(f"[bench-server] {line}", file=sys.stderr))
    print(format_server_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def cmd_bench_messages(args: argparse.Namespace) -> int:
    """The subscriber's per-message cost on /sensors_data_raw, typed vs versioned (bench/messages.py)."""
    from groot_ros.bench.messages import format_message_bench, run_message_bench

    result = run_message_bench(args.msg_version, args.count, args.rounds)
    print(format_message_bench(result))
    return 0 if result["passed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-policy", help="time the stock LeRobot path and ours per stage, check equal outputs")
    add_checkpoint_args(p, required=False)
    p.add_argument("--size", default="tiny", choices=("tiny", "full"),
                   help="random-weight model to build (full: GR00T N1.5 dimensions, ~2.7B parameters; GPU)")
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
    p.add_argument("--also", action="append", default=[], choices=EXTRAS,
                   help="also time ours with these switched on, as extra rows (repeatable): cuda_graphs, compile, "
                        "compile+cuda_graphs")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile N calls per path and print the device time per kernel family")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_bench_policy)

    p = sub.add_parser("bench-node-path", help="the node's per-chunk inference work (observation build + "
                                               "predict_chunk, unseeded) in a worker thread, without ROS")
    add_checkpoint_args(p, required=False)
    p.add_argument("--size", default="tiny", choices=("tiny", "full"), help="random-weight model (as bench-policy)")
    p.add_argument("--workdir", default="artifacts/bench")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--attention", default="auto", choices=("auto", "sdpa", "flash_attention_2"))
    p.add_argument("--stock", action="store_true", help="the stock engine (fast_inference:=false)")
    p.add_argument("--seed", type=int, default=None, help="default: none, fresh noise per chunk as the node")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--chunks", type=int, default=100)
    p.add_argument("--json")
    p.set_defaults(func=cmd_bench_node_path)

    p = sub.add_parser("bench-node", help="the policy node's control jitter, latency, CPU share and stalls on the "
                                          "stand-in sim (async vs sync)")
    p.add_argument("--checkpoint", help="pretrained_model/ dir (default: a fresh tiny checkpoint)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per mode")
    p.add_argument("--image-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--modes", nargs="+", default=["async", "sync"], choices=("async", "sync", "record"),
                   help="record: async with record_dir (LeRobot episodes, mp4): compare it with async")
    p.add_argument("--fast-inference", action="store_true")
    p.add_argument("--topics", default="sim", choices=("sim", "real"),
                   help="sim: raw rgb8 cameras; real: the robot's compressed JPEG /cam_* topics")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_bench_node)

    p = sub.add_parser("bench-server", help="the policy server's round trip on loopback vs the same engine in "
                                            "process: 3 cameras at 224x224 and 480x640, raw and JPEG, two robots")
    p.add_argument("--checkpoint", help="default: a random-weight model of --size")
    p.add_argument("--size", default="tiny", choices=("tiny", "full"))
    p.add_argument("--workdir", default="artifacts/bench")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--fast", action="store_true", help="groot_ros's inference path")
    p.add_argument("--cuda-graphs", action="store_true", help="the fast path with CUDA graphs (CUDA only)")
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json")
    p.set_defaults(func=cmd_bench_server)

    p = sub.add_parser("bench-messages", help="the subscriber's cost per /sensors_data_raw message: typed (before "
                                              "message versions) vs decoded in the publisher's version (now)")
    p.add_argument("--msg-version", default="robot-2025-04", help="the Kuavo message version of the messages")
    p.add_argument("--count", type=int, default=5000, help="messages per round and path")
    p.add_argument("--rounds", type=int, default=7)
    p.set_defaults(func=cmd_bench_messages)
