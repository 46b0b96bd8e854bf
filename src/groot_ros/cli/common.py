"""Arguments and helpers every CLI area shares: layout selection, checkpoint loading, error exits."""

from __future__ import annotations

import argparse
import sys


def fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def add_layout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="depalletize", help="layout name in config/layouts or a YAML path")
    p.add_argument("--robot", default="4_pro", help="robot version (config/robots): 4_pro or 5_wheel")
    p.add_argument("--topics", default="sim", help="topic set (config/topics): sim or real")


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    add_layout_args(p)
    p.add_argument("--checkpoint", required=True, help="a LeRobot GR00T pretrained_model/ directory")
    p.add_argument("--base-config", help="GR00T N1.5 base config.json (default: searched beside the checkpoint "
                                         "and in the local Hugging Face cache)")
    p.add_argument("--eagle-assets", help="Eagle tokenizer/processor assets directory (default: searched)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--attention", default="auto", choices=("auto", "sdpa", "flash_attention_2"))


def load_runtime(args: argparse.Namespace):
    from groot_ros.core.layout import load_layout
    from groot_ros.policy.runtime import GrootRuntime

    layout = load_layout(args.layout, args.robot, args.topics)
    return GrootRuntime.load(args.checkpoint, layout, base_config=args.base_config, eagle_assets=args.eagle_assets,
                             device=args.device, dtype=args.dtype, attention=args.attention)
