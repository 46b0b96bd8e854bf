"""Arguments and helpers every CLI area shares: layout selection, checkpoint loading, error exits.

A verb that loads a checkpoint chooses its layout, cameras and task the way the node does (policy/matching.py,
`--layout auto`) and prints the node's start-up block, so what a tool ran with is what the robot would run
with; `--layout NAME` still names one. Verbs without a checkpoint (bag2lerobot, quickstart, ...) keep a
named default.
"""

from __future__ import annotations

import argparse
import sys


def fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def add_layout_args(p: argparse.ArgumentParser, default: str = "depalletize") -> None:
    what = "'auto': the shipped layout matching the checkpoint, as the node chooses; " if default == "auto" else ""
    p.add_argument("--layout", default=default, help=f"{what}a layout name in config/layouts or a YAML path")
    p.add_argument("--robot", default="4_pro", help="robot version (config/robots): 4_pro or 5_wheel")
    p.add_argument("--topics", default="sim", help="topic set (config/topics): sim, real, real_orbbec, ...")


def add_checkpoint_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """--checkpoint with the node's layout matching: --layout auto and --cameras overrides."""
    add_layout_args(p, default="auto")
    p.add_argument("--checkpoint", required=required, help="a LeRobot GR00T pretrained_model/ directory")
    p.add_argument("--cameras", help="camera keys config/cameras.yaml does not know, e.g. \"top_view=head\"")


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    add_checkpoint_args(p)
    p.add_argument("--base-config", help="GR00T N1.5 base config.json (default: searched beside the checkpoint "
                                         "and in the local Hugging Face cache)")
    p.add_argument("--eagle-assets", help="Eagle tokenizer/processor assets directory (default: searched)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--attention", default="auto", choices=("auto", "sdpa", "flash_attention_2"))


def checkpoint_layout(args: argparse.Namespace, task: str | None = None, extra: tuple[str, ...] = ()):
    """(layout, task) for args.checkpoint, chosen as the node chooses them; prints the node's start-up block.

    task: the one given on the command line (None: the training data's, else groot_ros's default).
    """
    from groot_ros.policy.matching import choose_layout, choose_task, describe

    choice = choose_layout(args.checkpoint, args.robot, args.topics, args.layout, getattr(args, "cameras", None))
    chosen, source = choose_task(task or "", choice.inputs.data)
    print(describe(choice, chosen, source, extra), file=sys.stderr, flush=True)
    return choice.layout, chosen


def load_runtime(args: argparse.Namespace, task: str | None = None, extra: tuple[str, ...] = ()):
    """(runtime, task): the checkpoint loaded with the layout checkpoint_layout chose."""
    from groot_ros.policy.runtime import GrootRuntime

    layout, chosen = checkpoint_layout(args, task, extra)
    runtime = GrootRuntime.load(args.checkpoint, layout, base_config=args.base_config, eagle_assets=args.eagle_assets,
                                device=args.device, dtype=args.dtype, attention=args.attention)
    return runtime, chosen
