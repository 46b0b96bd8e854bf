"""Demo verbs: demo (what `make demo` runs) and record-demos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from groot_ros.cli.common import add_layout_args
from groot_ros.core.observation import DEFAULT_TASK


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: record -> dataset -> train -> evaluate -> closed loop -> report, all offline."""
    from groot_ros.demo.pipeline import DemoConfig, run_demo

    run_demo(DemoConfig(out=Path(args.out), episodes=args.episodes, episode_seconds=args.episode_seconds,
                        train_steps=args.train_steps, closed_loop_seconds=args.closed_loop_seconds,
                        closed_loop_episodes=args.closed_loop_episodes, seed=args.seed,
                        task=args.task, sim_loop_boxes=args.sim_loop_boxes, dagger=args.dagger,
                        dagger_boxes=args.dagger_boxes, dagger_eval_boxes=args.dagger_eval_boxes))
    return 0


def cmd_sim_loop(args: argparse.Namespace) -> int:
    """The closed loop without ROS in simulated time, every blend at every latency: the comparison table."""
    import json

    from groot_ros.core.layout import load_layout
    from groot_ros.demo.sim_loop import TABLE_HEADER, LoopConfig, compare, unseen_boxes
    from groot_ros.execution.config import load_execution_settings
    from groot_ros.policy.loading import load_policy
    from groot_ros.sim.standin_model import load_sim_config

    layout = load_layout(args.layout, robot=args.robot, topics="sim")
    policy = load_policy(args.checkpoint, layout, fast=not args.stock)
    if args.rtc_guidance is not None:
        from dataclasses import replace

        policy.rtc = replace(policy.rtc, max_guidance_weight=args.rtc_guidance)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    base = load_execution_settings(args.execution_config)
    print("\n".join(TABLE_HEADER), flush=True)
    cells = compare(policy, layout, base, load_sim_config(robot=args.robot), args.blend,
                    [ms / 1e3 for ms in args.latency_ms], unseen_boxes(args.boxes, args.seed),
                    LoopConfig(seconds=args.seconds, task=args.task),
                    progress=lambda row: print(row, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    return 0


def cmd_dagger_trials(args: argparse.Namespace) -> int:
    """A DAgger round's trials: the policy on new boxes, the demonstrator taking over where it fails, recorded."""
    from groot_ros.core.layout import load_layout
    from groot_ros.demo.dagger import trials

    runs = trials(Path(args.model), Path(args.out), load_layout(), args.boxes, args.seconds, args.demo_seconds,
                  args.task, args.seed)
    print(f"{len(runs)} trials, {sum(bool(r.takeover) for r in runs)} taken over; recorded in "
          f"{Path(args.out) / 'recordings'}")
    return 0


def cmd_record_demos(args: argparse.Namespace) -> int:
    from groot_ros.demo.recording import RecordError, RecordOptions, record

    options = RecordOptions(out=Path(args.out), episodes=args.episodes, seconds=args.seconds, task=args.task,
                            seed=args.seed, layout=args.layout, robot=args.robot, topics=args.topics,
                            image_size=tuple(args.image_size) if args.image_size else None, master_uri=args.master_uri)
    try:
        record(options)
    except (RecordError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from groot_ros.demo.pipeline import DemoConfig

    d = DemoConfig()
    p = sub.add_parser("demo", help="the whole pipeline on the stand-in sim, with a report (what `make demo` runs)")
    p.add_argument("--out", default=str(d.out))
    p.add_argument("--episodes", type=int, default=d.episodes, help="recorded episodes; the last is held out")
    p.add_argument("--episode-seconds", type=float, default=d.episode_seconds)
    p.add_argument("--train-steps", type=int, default=d.train_steps)
    p.add_argument("--closed-loop-seconds", type=float, default=d.closed_loop_seconds,
                   help="longest closed-loop episode (it ends when the box is placed)")
    p.add_argument("--closed-loop-episodes", type=int, default=d.closed_loop_episodes,
                   help="closed-loop episodes per policy (trained, untrained, hold), each with an unseen box")
    p.add_argument("--sim-loop-boxes", type=int, default=d.sim_loop_boxes,
                   help="> 0: also run the sim-loop blends x latencies table on the trained checkpoint with this many "
                        "unseen boxes per cell (about 0.5 s per box and cell); 0: the report shows the committed one")
    p.add_argument("--dagger", action="store_true",
                   help="also one DAgger round: the trained policy on new boxes with the node recording, the scripted "
                        "demonstrator taking over where it fails, the recordings merged, training again, success "
                        "before and after on unseen boxes (demo/dagger.py)")
    p.add_argument("--dagger-boxes", type=int, default=d.dagger_boxes, help="new boxes of the DAgger round's trials")
    p.add_argument("--dagger-eval-boxes", type=int, default=d.dagger_eval_boxes,
                   help="unseen boxes for the DAgger round's before / after / hold")
    p.add_argument("--task", default=d.task)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dagger-trials", help="a DAgger round's trials on the stand-in (make demo --dagger's first "
                                             "stage): the policy node recording, the scripted demonstrator taking "
                                             "over where the policy fails")
    p.add_argument("--model", required=True, help="a demo training folder (run/checkpoints/last/pretrained_model, "
                                                  "tiny_base/), e.g. artifacts/demo/3_training")
    p.add_argument("--out", required=True, help="folder for recordings/ (LeRobot dataset), runs.json, launch.log")
    p.add_argument("--boxes", type=int, default=d.dagger_boxes)
    p.add_argument("--seconds", type=float, default=d.closed_loop_seconds, help="the policy's time to place a box")
    p.add_argument("--demo-seconds", type=float, default=d.episode_seconds,
                   help="the demonstrator's pace: a phase takes what it takes in a demonstration this long")
    p.add_argument("--task", default=d.task)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=cmd_dagger_trials)

    p = sub.add_parser("sim-loop", help="closed loop without ROS in simulated time (stand-in core, the node's "
                                        "execution core, the policy, injected latency): blends x latencies table")
    p.add_argument("--checkpoint", default="artifacts/demo/3_training/run/checkpoints/last/pretrained_model",
                   help="default: the one `make demo` trained")
    p.add_argument("--layout", default="depalletize")
    p.add_argument("--robot", default="4_pro")
    p.add_argument("--blend", nargs="+", default=["none", "crossfade", "lowpass", "rtc"],
                   help="none | crossfade | lowpass | rtc (guided) | rtc-prefix (GR00T's prefix method)")
    p.add_argument("--latency-ms", type=float, nargs="+", default=[0, 100, 300, 500],
                   help="observation -> chunk at the core, in simulated time")
    p.add_argument("--boxes", type=int, default=20, help="unseen boxes per cell (the demo's closed-loop boxes)")
    p.add_argument("--seconds", type=float, default=DemoConfig.closed_loop_seconds, help="longest episode")
    p.add_argument("--execution-config", help="default: config/execution.yaml (its blend is replaced per cell)")
    p.add_argument("--rtc-guidance", type=float, help="rtc: the guided method's max guidance weight (default: "
                                                       "policy/rtc.py RtcOptions)")
    p.add_argument("--stock", action="store_true", help="LeRobot's inference path instead of groot_ros's fast one")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--seed", type=int, default=0, help="which unseen boxes (the demo's seed)")
    p.add_argument("--json", help="also write the table's cells here")
    p.set_defaults(func=cmd_sim_loop)

    p = sub.add_parser("record-demos", help="record scripted depalletize demonstrations on the stand-in sim as "
                                            "rosbags (one per episode) with a bag2lerobot --task-map")
    add_layout_args(p)
    p.add_argument("--out", required=True, help="folder for episode_NNN.bag, tasks.json, episodes.json")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=12.0, help="length of each episode (>= 8)")
    p.add_argument("--seed", type=int, default=0, help="episode k's variation comes from (seed, k)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="camera size (default: config/sim.yaml)")
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--master-uri", help="use this ROS master (default: a private roscore on a free port)")
    p.set_defaults(func=cmd_record_demos)
