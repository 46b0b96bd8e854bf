"""Offline-tool verbs: bag2lerobot, eval-dataset, convert-v21, train."""

from __future__ import annotations

import argparse
from pathlib import Path

from groot_ros.cli.common import add_layout_args, add_runtime_args, fail, load_runtime
from groot_ros.core.observation import DEFAULT_TASK


def cmd_bag2lerobot(args: argparse.Namespace) -> int:
    from groot_ros.core.cameras import PREFIX, CameraNameError, map_camera_keys
    from groot_ros.core.layout import LayoutError, load_layout
    from groot_ros.tools.bag2lerobot import ConversionError, ConvertOptions, convert, load_task_map, with_command_topic

    try:
        options = ConvertOptions(task=args.task, fps=args.fps, clock=args.clock, tolerance=args.tolerance,
                                 tasks=load_task_map(args.task_map) if args.task_map else {},
                                 repo_id=args.repo_id, video=args.video)
        cameras = map_camera_keys([PREFIX + c.strip() for c in args.cameras.split(",")]) if args.cameras else None
        layout = load_layout(args.layout, args.robot, args.topics, cameras=cameras)
        if args.arm_action_topic:
            layout = with_command_topic(layout, "arm", args.arm_action_topic)
        report = convert(args.bags, args.out, layout, options)
    except (ConversionError, CameraNameError, LayoutError) as exc:
        return fail(exc)
    print(report.summary())
    return 0


def cmd_merge_datasets(args: argparse.Namespace) -> int:
    from groot_ros.tools.bag2lerobot import ConversionError, merge_datasets

    try:
        out = merge_datasets(args.datasets, args.out, args.repo_id)
    except ConversionError as exc:
        return fail(exc)
    print(f"merged {len(args.datasets)} datasets -> {out}")
    return 0


def _episodes(values: list[str]) -> list[int] | None:
    from groot_ros.tools.eval_dataset import EvalError

    if values == ["all"]:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise EvalError(f"--episode takes episode numbers or 'all', got {' '.join(values)}") from None


def cmd_eval_dataset(args: argparse.Namespace) -> int:
    from groot_ros.tools.eval_dataset import VARIANTS, EvalError, EvalOptions, evaluate, summary

    if args.ablations == "all":
        variants = list(VARIANTS)
    else:
        variants = [v for v, on in (("state-zero", args.state_zero), ("image-zero", args.image_zero)) if on] or ["normal"]
    out = args.out or str(Path("artifacts") / "eval" / Path(args.dataset_root).resolve().name)
    try:
        options = EvalOptions(episodes=_episodes(args.episode), action_chunk_size=args.action_chunk_size,
                              variants=tuple(variants), task=args.task, seed=args.seed, max_frames=args.max_frames,
                              plots=not args.no_plots, humanoid_groot=args.metric == "humanoid_groot")
        fed = f"the task '{args.task}'" if args.task else "each frame's task from the dataset"
        runtime, _ = load_runtime(args, args.task, extra=(f"eval-dataset feeds {fed}",))
        untrained = None
        if args.untrained:
            from groot_ros.tools.training import TrainingError, untrained_runtime

            try:
                untrained = untrained_runtime(Path(runtime.info.path), runtime.layout, runtime.base_config.parent)
            except (TrainingError, KeyError, OSError) as exc:
                raise EvalError(f"--untrained: {exc}") from None
        result = evaluate(runtime, args.dataset_root, out, options, untrained=untrained)
    except EvalError as exc:
        return fail(exc)
    print(summary(result, runtime.layout))
    return 0


def cmd_convert_v21(args: argparse.Namespace) -> int:
    from groot_ros.tools.dataset_upkeep import UpkeepError, convert_v21

    try:
        check = convert_v21(args.root)
    except UpkeepError as exc:
        return fail(exc)
    print(check.summary())
    print(f"browse it: lerobot-dataset-viz --repo-id local/{check.root.name} --root {check.root} --episode-index 0")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from groot_ros.core.layout import load_layout
    from groot_ros.tools.training import TrainingError, make_tiny_base_model, options_from_args, train

    if args.tiny_base_model:
        tiny = make_tiny_base_model(args.tiny_base_model)
        print(f"tiny GR00T base model: {tiny.base_model}\n  Eagle assets: {tiny.eagle_assets}")
        if not args.dataset_root and not args.resume:
            return 0
        args.base_model, args.eagle_assets = str(tiny.base_model), tiny.eagle_assets
    try:
        train(options_from_args(args), load_layout(args.layout, args.robot, args.topics), dry_run=args.dry_run)
    except TrainingError as exc:
        return fail(exc)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from groot_ros.tools.training import add_arguments as add_train_arguments

    p = sub.add_parser("bag2lerobot", help="convert Kuavo rosbags (one per episode) into a LeRobot v3.0 dataset")
    add_layout_args(p)
    p.add_argument("bags", nargs="+", help="bag files and/or folders holding *.bag (sorted: episode order)")
    p.add_argument("--out", required=True, help="new dataset root (must not exist)")
    p.add_argument("--task", default=DEFAULT_TASK, help="task string of every episode")
    p.add_argument("--task-map", help="YAML/JSON: bag file name or stem -> task string (overrides --task)")
    p.add_argument("--fps", type=int, default=10, help="timeline rate (the layout's 1 / model_action_dt)")
    p.add_argument("--clock", default="header", choices=("header", "receive"),
                   help="time messages by header stamp (receive time when absent) or by bag receive time")
    p.add_argument("--tolerance", type=float,
                   help="max age (s) of a sensor/camera message at a frame (default: max_age in config/topics)")
    p.add_argument("--repo-id", help="dataset name recorded in it (default local/<out folder name>)")
    p.add_argument("--video", action="store_true", help="store cameras as mp4 video (default: PNG images)")
    p.add_argument("--cameras", help="dataset camera keys, comma-separated (observation.images.<key>), e.g. "
                                     "cam_head,cam_chest,cam_left,cam_right; each one a camera of config/cameras.yaml "
                                     "(default: the layout's)")
    p.add_argument("--arm-action-topic", help="read the arm action from this topic instead of the topic set's "
                                              "(scripted data: /mm_kuavo_arm_traj)")
    p.set_defaults(func=cmd_bag2lerobot)

    p = sub.add_parser("merge-datasets", help="merge LeRobot v3.0 datasets into one (LeRobot's own aggregation), "
                                              "to train on several at once")
    p.add_argument("datasets", nargs="+", help="dataset roots (same fps, robot type and features)")
    p.add_argument("--out", required=True, help="new dataset root (must not exist)")
    p.add_argument("--repo-id", help="dataset name recorded in it (default local/<out folder name>)")
    p.set_defaults(func=cmd_merge_datasets)

    p = sub.add_parser("eval-dataset", help="replay a checkpoint on dataset episodes: errors, plots, ablations")
    add_runtime_args(p)
    p.add_argument("--dataset-root", required=True, help="local LeRobot v3.0 dataset")
    p.add_argument("--episode", nargs="+", default=["0"], help="episode numbers, or 'all' (default 0)")
    p.add_argument("--action-chunk-size", type=int, default=16, help="execute K rows of each chunk, then re-infer")
    p.add_argument("--task", help="task string (default: each frame's task in the dataset)")
    p.add_argument("--state-zero", action="store_true", help="ablation: the model's state input is zero")
    p.add_argument("--image-zero", action="store_true", help="ablation: black images")
    p.add_argument("--ablations", choices=("all",), help="all: normal, state-zero and image-zero in one run")
    p.add_argument("--untrained", action="store_true",
                   help="also score the checkpoint with its base weights (beside the base config it loads)")
    p.add_argument("--out", help="output folder (default artifacts/eval/<dataset name>)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (the same per chunk in every variant)")
    p.add_argument("--max-frames", type=int, help="evaluate only the first N frames of each episode")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--metric", default="ours", choices=("ours", "humanoid_groot"),
                   help="humanoid_groot: also the score of the users' scripts/eval_on_dataset.py (last chunk row vs "
                        "the current frame), printed beside ours with a perfect predictor's (docs/offline_tools.md)")
    p.set_defaults(func=cmd_eval_dataset)

    p = sub.add_parser("convert-v21", help="convert a local LeRobot v2.1 dataset to v3.0 in place, then check it")
    p.add_argument("root", help="the v2.1 dataset root (the original is kept as ROOT_old)")
    p.set_defaults(func=cmd_convert_v21)

    p = sub.add_parser("train", help="fine-tune GR00T N1.5 with lerobot-train (offline, CPU or GPUs)")
    add_layout_args(p)
    add_train_arguments(p)
    p.add_argument("--tiny-base-model", metavar="DIR",
                   help="write a tiny GR00T base model to DIR and train from it (CPU smoke runs)")
    p.set_defaults(func=cmd_train)
