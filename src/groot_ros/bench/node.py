"""`python -m groot_ros bench-node`: the policy node's real-time numbers on the Kuavo stand-in sim.

Starts its own roscore, the stand-in sim with three raw rgb8 cameras (default 640x480 at 30 Hz) and the policy
node with a checkpoint (default: a fresh tiny one), once in async and once in sync mode (and, with `record`, once
more in async mode recording the run as LeRobot episodes with mp4 video: the baseline for "the recorder never
blocks the control loop" is the async run beside it), and reads what the node itself measures (the structured
fields of its ~status: chunks, stall and missed ticks, `timings`) plus its CPU time. Numbers, not pass/fail: the
machine decides them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from groot_ros.sim.launcher import roslaunch, running_sim, stop, wait_until


@dataclass(frozen=True)
class NodeBenchConfig:
    checkpoint: Path | None = None  # None: a tiny checkpoint made for the run
    seconds: float = 20.0
    image_height: int = 480
    image_width: int = 640
    camera_rate: float = 30.0
    modes: tuple[str, ...] = ("async", "sync")  # and "record": async with record_dir (LeRobot episodes, mp4)
    fast_inference: bool = False
    topics: str = "sim"  # sim: raw rgb8 Orbbec-style cameras; real: the robot's compressed JPEG /cam_* topics


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (roslaunch -> node)."""
    import psutil

    total = 0.0
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _node_pid(launch_pid: int) -> int:
    import psutil

    for child in psutil.Process(launch_pid).children(recursive=True):
        if "groot_policy_node" in " ".join(child.cmdline()):
            return child.pid
    raise RuntimeError("policy node process not found under roslaunch")


def _run_mode(mode: str, cfg: NodeBenchConfig, checkpoint: Path, work: Path, env: dict) -> dict:
    import rospy

    from groot_ros.msg import PolicyStatus

    latest: dict = {}

    def on_status(msg: PolicyStatus) -> None:
        latest.update({kv.key: kv.value for kv in msg.timings}, chunks=msg.chunks, stall_ticks=msg.stalls,
                      missed_ticks=msg.missed_ticks)

    overrides = work / f"exec_{mode}.yaml"
    execution_mode = "async" if mode == RECORD else mode
    overrides.write_text(yaml.safe_dump({"execution": {"mode": execution_mode}, "watchdog": {"auto_resume": True}}))
    record = work / "recording" if mode == RECORD else None
    launch = roslaunch(["groot_ros", "policy.launch", f"checkpoint:={checkpoint}", f"topics:={cfg.topics}",
                        f"execution_overrides:={overrides}", f"fast_inference:={str(cfg.fast_inference).lower()}",
                        *([f"record_dir:={record}", "record_video:=true"] if record else [])],
                       env, work / f"launch_{mode}.log")
    sub = rospy.Subscriber("/groot_policy/status", PolicyStatus, on_status, queue_size=10)
    try:
        wait_until(lambda: latest.get("chunks", 0) >= 2, 120, f"{mode}: two chunks from the node", [launch])
        pid = _node_pid(launch.proc.pid)
        stalls0, missed0 = latest["stall_ticks"], latest["missed_ticks"]
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        time.sleep(cfg.seconds)
        snapshot = dict(latest)
        cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - t0
        written = _stop_and_count(record, [launch]) if record else None
    finally:
        sub.unregister()
        stop(launch.proc)
    stall_ticks = snapshot["stall_ticks"] - stalls0

    def ms(key: str) -> float:
        return float(snapshot.get(key, "nan"))

    return {
        "mode": mode,
        "seconds": round(wall, 1),
        "control_period_p50_ms": ms("control_period_p50_ms"),
        "control_period_p99_ms": ms("control_period_p99_ms"),
        "control_period_max_ms": ms("control_period_max_ms"),
        "tick_compute_p99_ms": ms("tick_compute_p99_ms"),
        "observation_build_p50_ms": ms("observation_build_p50_ms"),
        "observation_build_p99_ms": ms("observation_build_p99_ms"),
        "chunk_to_command_p50_ms": ms("chunk_to_command_p50_ms"),
        "chunk_to_command_p99_ms": ms("chunk_to_command_p99_ms"),
        "inference_p50_ms": ms("inference_p50_ms"),
        "inference_p99_ms": ms("inference_p99_ms"),
        "stall_ticks": stall_ticks,
        "missed_ticks": snapshot["missed_ticks"] - missed0,
        "stall_time_s": stall_ticks * 0.01,
        "node_cpu_percent_of_one_core": round(100.0 * cpu / wall, 1),
        **(written or {}),
    }


RECORD = "record"


def _stop_and_count(record: Path, watch: list) -> dict:
    """~stop saves the recorded episode (encoded on the recorder's thread); its frames against the run's length at
    the dataset's fps: how many the recorder kept."""
    import rospy
    from std_srvs.srv import Trigger

    from groot_ros.tools.deployment_recorder import TRIALS_FILE

    rospy.ServiceProxy("/groot_policy/stop", Trigger)()
    trials = record / TRIALS_FILE
    wait_until(lambda: trials.exists() and trials.read_text().strip(), 300, "the recorded episode saved", watch)
    trial = json.loads(trials.read_text().splitlines()[0])
    info = json.loads((record / "meta" / "info.json").read_text())
    expected = trial["duration_s"] * info["fps"]
    return {"recorded_frames": int(info["total_frames"]), "recorded_share": info["total_frames"] / expected}


def run_node_benchmark(cfg: NodeBenchConfig) -> dict:
    import rospy

    work = Path(tempfile.mkdtemp(prefix="groot_bench_node_"))
    checkpoint = cfg.checkpoint
    if checkpoint is None:
        from groot_ros.core.layout import load_layout
        from groot_ros.policy.tiny import make_tiny_checkpoint

        checkpoint = make_tiny_checkpoint(work / "tiny", load_layout()).pretrained_model
    overrides = {"image_size": [cfg.image_height, cfg.image_width], "camera_rate": cfg.camera_rate}
    with running_sim(work, topics=cfg.topics, overrides=overrides, params={"compressed": False}) as procs:
        rospy.init_node("groot_bench_node", anonymous=True, disable_signals=True)
        runs = [_run_mode(mode, cfg, checkpoint, work, dict(procs.env)) for mode in cfg.modes]
    return {"config": {k: str(v) for k, v in asdict(cfg).items()}, "checkpoint": str(checkpoint), "runs": runs,
            "cpu_count": os.cpu_count(), "work_dir": str(work)}


def format_report(report: dict) -> str:
    runs = report["runs"]
    rows = [
        ("control period p50 / p99 / max (ms)", lambda r: f"{r['control_period_p50_ms']:.2f} / "
         f"{r['control_period_p99_ms']:.2f} / {r['control_period_max_ms']:.2f}"),
        ("control tick compute p99 (ms)", lambda r: f"{r['tick_compute_p99_ms']:.3f}"),
        ("observation build p50 / p99 (ms)", lambda r: f"{r['observation_build_p50_ms']:.2f} / "
         f"{r['observation_build_p99_ms']:.2f}"),
        ("chunk ready -> first command p50 / p99 (ms)", lambda r: f"{r['chunk_to_command_p50_ms']:.2f} / "
         f"{r['chunk_to_command_p99_ms']:.2f}"),
        ("obs -> command excl. model, p50 (ms)", lambda r: f"{r['observation_build_p50_ms'] + r['chunk_to_command_p50_ms']:.2f}"),
        ("inference p50 / p99 (ms)", lambda r: f"{r['inference_p50_ms']:.1f} / {r['inference_p99_ms']:.1f}"),
        ("stall ticks (time)", lambda r: f"{r['stall_ticks']} ({r['stall_time_s']:.2f} s)"),
        ("missed control ticks (machine late)", lambda r: f"{r['missed_ticks']}"),
        ("node CPU (% of one core)", lambda r: f"{r['node_cpu_percent_of_one_core']:.1f}"),
        ("recorded frames (share of the run at its fps)", lambda r: f"{r['recorded_frames']} "
         f"({100 * r['recorded_share']:.0f} %)" if "recorded_frames" in r else "-"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    label = {RECORD: "async+record"}
    lines = [f"{'':<{width}}" + "".join(f"{label.get(r['mode'], r['mode']) + ' (' + str(r['seconds']) + ' s)':>26}"
                                        for r in runs)]
    lines += [f"{name:<{width}}" + "".join(f"{fmt(r):>26}" for r in runs) for name, fmt in rows]
    cfg = report["config"]
    kind = "raw rgb8" if cfg["topics"] == "sim" else f"'{cfg['topics']}' (JPEG where compressed)"
    lines.append(f"\n3 {kind} cameras {cfg['image_width']}x{cfg['image_height']} at {cfg['camera_rate']} Hz, "
                 f"control 100 Hz, {report['cpu_count']} CPU cores; checkpoint {report['checkpoint']}")
    return "\n".join(lines)


def main_bench_node(cfg: NodeBenchConfig, json_out: str | None) -> int:
    report = run_node_benchmark(cfg)
    print(format_report(report))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2))
    return 0
