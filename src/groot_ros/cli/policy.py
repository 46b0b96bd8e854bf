"""Policy verbs: make-tiny-checkpoint, predict, quickstart."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from groot_ros.cli.common import add_layout_args, add_runtime_args, load_runtime
from groot_ros.core.observation import DEFAULT_TASK


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
