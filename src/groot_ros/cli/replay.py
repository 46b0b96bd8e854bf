"""replay-episode: drive the robot with a dataset episode's recorded actions through the node's command path."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from groot_ros.cli.common import add_layout_args, fail


def cmd_replay_episode(args: argparse.Namespace) -> int:
    import yaml

    from groot_ros.ros.backends.config import BackendError
    from groot_ros.ros.episode_replay import ReplayError, ReplayOptions, replay_episode
    from groot_ros.tools.episodes import EpisodeError

    try:
        overrides = yaml.safe_load(Path(args.execution_overrides).read_text()) if args.execution_overrides else None
        report = replay_episode(ReplayOptions(
            dataset_root=Path(args.dataset_root), episode=args.episode, dry_run=not args.execute, layout=args.layout,
            robot=args.robot, topics=args.topics, backend=args.backend, direct_to_wbc=args.direct_to_wbc,
            execution_config=args.execution_config, execution_overrides=overrides,
            nominal_height=args.nominal_height, pose_timeout_s=args.pose_timeout))
    except (ReplayError, EpisodeError, BackendError, OSError, ValueError) as exc:
        return fail(exc)
    print(report.summary())
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=1))
    return 0 if report.restored is not False else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay-episode", help="drive the robot with a dataset episode's recorded actions (dry run "
                                              "unless --execute) and report how closely it followed")
    add_layout_args(p)
    p.set_defaults(topics="real")
    p.add_argument("--dataset-root", required=True, help="local LeRobot v3.0 dataset")
    p.add_argument("--episode", type=int, default=0)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", default=True,
                      help="(the default) read the measured pose and plan the commands, send nothing")
    mode.add_argument("--execute", action="store_true",
                      help="really command the robot: start-up sequence to the first action, the episode, exit steps")
    p.add_argument("--backend", default="topics", choices=("topics", "sdk"))
    p.add_argument("--direct-to-wbc", action="store_true", help="direct-to-WBC (biped) / quick mode (wheel-arm)")
    p.add_argument("--execution-config", help="execution YAML (default config/execution.yaml: safety, startup)")
    p.add_argument("--execution-overrides", help="YAML: section -> keys on top of it (as the node's)")
    p.add_argument("--nominal-height", type=float, help="standing height for Cmd_pose_z (default /com_height)")
    p.add_argument("--pose-timeout", type=float, default=10.0, help="s to wait for the measured pose")
    p.add_argument("--report", help="also write the report as JSON here")
    p.set_defaults(func=cmd_replay_episode)
