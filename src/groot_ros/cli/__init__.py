"""Command-line entry points (`python -m groot_ros VERB`): one module per area registers its verbs.

Each verb is a thin wrapper over a ROS-free module; heavy imports happen inside the handlers. Nothing in the
package imports cli.
"""

from __future__ import annotations

import argparse
import logging
import sys

from groot_ros.cli import bench, dagger, demo, policy, replay, tools


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m groot_ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in (tools, policy, replay, dagger, demo, bench):
        area.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from groot_ros.core.layout import LayoutError
    from groot_ros.policy.assets import AssetError
    from groot_ros.policy.attention import AttentionError
    from groot_ros.policy.base import ObservationError
    from groot_ros.policy.checkpoint import CheckpointError

    try:
        return args.func(args)
    except (LayoutError, AssetError, AttentionError, CheckpointError, ObservationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
