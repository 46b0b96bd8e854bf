"""Policy verbs: make-tiny-checkpoint, predict, quickstart, serve."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from groot_ros.cli.common import add_layout_args, add_runtime_args, load_runtime
from groot_ros.core.observation import DEFAULT_TASK
from groot_ros.policy.remote import API_KEY_ENV


def cmd_make_tiny_checkpoint(args: argparse.Namespace) -> int:
    from groot_ros.core.layout import load_layout
    from groot_ros.policy.tiny import make_tiny_checkpoint, parameter_count

    layout = load_layout(args.layout, args.robot, args.topics)
    tiny = make_tiny_checkpoint(args.out, layout, seed=args.seed)
    print(f"tiny GR00T checkpoint ({parameter_count(tiny.pretrained_model):,} parameters, layout '{layout.name}', "
          f"state {layout.state_dim}, action {layout.action_dim}) written to:\n"
          f"  {tiny.pretrained_model}\n  {tiny.base_model}/config.json\n  {tiny.eagle_assets}/")
    return 0


def predict_and_print(runtime, obs, seed: int | None, repeats: int) -> None:
    from groot_ros.core.chunk_table import format_chunk

    predictions = [runtime.predict(obs, seed=seed) for _ in range(max(repeats, 1))]
    chunk, timings = predictions[0].chunk, [p.timings for p in predictions]
    print(format_chunk(chunk, runtime.layout))
    t = timings[-1] if repeats > 1 else timings[0]
    print(f"\ntimings ({'after warm-up' if repeats > 1 else 'first call'}, {runtime.device}/{runtime.dtype}, "
          f"{runtime.attention.implementation} attention): preprocess {t.preprocess_ms:.1f} ms, "
          f"model {t.model_ms:.1f} ms, de-normalize {t.denormalize_ms:.2f} ms, total {t.total_ms:.1f} ms")


def cmd_predict(args: argparse.Namespace) -> int:
    from groot_ros.policy.tiny import synthetic_observation

    runtime, task = load_runtime(args, args.task)
    predict_and_print(runtime, synthetic_observation(runtime.layout, task=task), args.seed, args.repeats)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The smallest check: tiny checkpoint -> load offline -> one de-normalized chunk."""
    from groot_ros.core.layout import load_layout
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.policy.tiny import synthetic_observation
    from groot_ros.policy.tiny import make_tiny_checkpoint, parameter_count

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
    predict_and_print(runtime, synthetic_observation(layout, task=args.task), args.seed, repeats=5)
    print("\n[quickstart] every row of the 16-step chunk is de-normalized with the checkpoint's dataset min/max "
          "(Right_claw has max == min in these stats, so it is its min).")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Loads the checkpoint as the node would (layout, cameras, task chosen from it), warms it up (captures the
    CUDA graphs with --cuda-graphs), then accepts connections: the first request is as fast as the rest."""
    import asyncio
    import logging
    import os

    from groot_ros.cli.common import checkpoint_layout
    from groot_ros.policy.loading import warm_up
    from groot_ros.policy.matching import choose_layout
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.policy.server import PolicyServer, ServerConfig, served_metadata

    logging.getLogger("groot_ros.policy.server").setLevel(logging.INFO)
    layout, task = checkpoint_layout(args, args.task)
    choice = choose_layout(args.checkpoint, args.robot, args.topics, args.layout, args.cameras)
    t0 = time.perf_counter()
    runtime = GrootRuntime.load(args.checkpoint, layout, base_config=args.base_config, eagle_assets=args.eagle_assets,
                                device=args.device, dtype=args.dtype, attention=args.attention)
    if args.fast or args.cuda_graphs:
        from groot_ros.policy.fast import FastOptions

        runtime.enable_fast_path(FastOptions(cuda_graphs=args.cuda_graphs))
    warm_up(runtime, layout, task, choice.inputs.image_sizes)
    engine = (f"{runtime.device}/{runtime.dtype}, {runtime.name} inference path"
              + (", CUDA graphs" if args.cuda_graphs else ""))
    config = ServerConfig(host=args.host, port=args.port, api_key=args.api_key or os.environ.get(API_KEY_ENV, ""),
                          max_frame_bytes=int(args.max_frame_mb * (1 << 20)))
    server = PolicyServer(runtime, served_metadata(choice, runtime, task, engine, config.max_frame_bytes), config)
    print(f"loaded and warmed up in {time.perf_counter() - t0:.1f} s ({engine})", file=sys.stderr)

    def started(port: int) -> None:
        key = "api key required" if config.api_key else "no api key"
        print(f"serving on ws://{config.host}:{port} ({key}; health: http://{config.host}:{port}/healthz); "
              f"on the robot: policy_server:=ws://<this machine>:{port}", file=sys.stderr, flush=True)

    try:
        asyncio.run(server.run(started))
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-tiny-checkpoint", help="write a tiny GR00T-architecture checkpoint (random weights)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    add_layout_args(p)
    p.set_defaults(func=cmd_make_tiny_checkpoint)

    p = sub.add_parser("predict", help="load a checkpoint and predict one chunk from a synthetic observation")
    add_runtime_args(p)
    p.add_argument("--task", help="language instruction (default: the checkpoint's training data's task, else "
                                  f"'{DEFAULT_TASK}')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="calls to time (the first warms up)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("quickstart", help="tiny checkpoint -> offline load -> one de-normalized chunk, in seconds")
    add_layout_args(p)
    p.add_argument("--out", default="artifacts/quickstart")
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("serve", help="serve a checkpoint to robots over a websocket (openpi's protocol; "
                                     "docs/policy_server.md)")
    add_runtime_args(p)
    p.add_argument("--task", help="default instruction in the metadata (default: the training data's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for other machines "
                                                        "(then give --api-key)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--fast", action="store_true", help="groot_ros's inference path (docs/inference_speed.md)")
    p.add_argument("--cuda-graphs", action="store_true", help="the fast path with CUDA graphs (CUDA only; "
                                                               "captured before connections are accepted)")
    p.add_argument("--api-key", default="", help=f"required from clients (header 'Authorization: Api-Key KEY'); "
                                                 f"default ${API_KEY_ENV}")
    p.add_argument("--max-frame-mb", type=float, default=16.0, help="larger frames are refused (close code 1009)")
    p.set_defaults(func=cmd_serve)
