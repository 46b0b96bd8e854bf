"""The closed loop without ROS, in simulated time: the stand-in's core and renderer, the node's execution core, the
policy, injected inference latency, N unseen boxes in seconds each (`python -m groot_ros sim-loop`).

What it shares with the node and `make demo`: the StandInModel (sim/standin_model.py) and its task's scoring, the
renderer the stand-in publishes, the node's ControlStep (scheduler + blending + RTC prefix + safety envelope at the
control rate), the policy (any ChunkPolicy: GrootRuntime with either engine), the demo's unseen boxes and home
pose. What it replaces: ROS transport and wall-clock time. The model runs when the core asks for a chunk (as the
node's worker does, never faster than the model's step); its chunk reaches the core `latency_s` of simulated time
after the observation, whatever the model really took, so a cell of the comparison table is the same run on any
machine. Used to tune the demo recipe and to measure the blends (docs/rtc.md).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.observation import DEFAULT_TASK, Observation
from groot_ros.demo.closed_loop import chunk_boundary_steps, eval_boxes
from groot_ros.demo.demonstrator import start_pose
from groot_ros.execution.config import ExecutionSettings
from groot_ros.execution.control_step import ControlStep
from groot_ros.sim.render import render
from groot_ros.sim.standin_model import ARM_EXTERNAL, SimConfig, SimSnapshot, StandInModel
from groot_ros.sim.task import PLACED

SETTLE_S = 1.5  # at home before each episode (the demo's approach, without recording it)


@dataclass(frozen=True)
class LoopConfig:
    latency_s: float = 0.0  # observation -> chunk at the core, simulated
    seconds: float = 12.0  # longest episode (it ends when the box is placed), as the demo's
    task: str = DEFAULT_TASK
    seed: int | None = None  # None: fresh noise per chunk (as the node runs); else the same seed every chunk


@dataclass
class EpisodeResult:
    box: tuple[float, float]
    phase: str = ""
    success: bool = False
    seconds: float = 0.0
    chunks: int = 0
    clamps: int = 0
    boundary_steps: list[float] = field(default_factory=list)  # rad: new chunk vs the old plan at the takeover
    largest_tick_step: float = 0.0  # rad: largest commanded arm change between ticks (before the envelope)
    model_s: list[float] = field(default_factory=list)  # wall time of each policy call


def observe(snap: SimSnapshot, layout: Layout, sim: SimConfig, task: str, stamp: float,
            noise: np.random.Generator) -> Observation:
    """What the node would build from the stand-in's messages: J_q, Claw_pos, Com_z_pitch and its cameras (with
    the sensor-noise row the stand-in adds)."""
    values = {"J_q": snap.arm, "Claw_pos": snap.claw, "Com_z_pitch": np.array([snap.base_height, snap.torso[1]])}
    state = np.concatenate([values[c.name] for c in layout.state])
    images = {}
    for cam in layout.cameras:
        img = render(cam.name, snap.arm, snap.claw, snap.torso, sim.image_size, snap.task.box, snap.task.held,
                     sim.task.target_lateral)
        img[0] = noise.integers(0, 256, img[0].shape, dtype=np.uint8)
        images[cam.key] = img
    return Observation(state=state, images=images, task=task, stamp=stamp)


def measured_action(snap: SimSnapshot, layout: Layout) -> np.ndarray:
    return layout.action_from_channels({"arm": snap.arm, "claw": snap.claw, "torso": snap.torso})


def send(model: StandInModel, layout: Layout, command: np.ndarray) -> None:
    channels = layout.channel_values(command)
    model.command_arm(model.config.robot.arm_joint_names, channels["arm"])
    model.command_claw(channels["claw"])
    model.command_torso(*channels["torso"])


def settle_at(model: StandInModel, layout: Layout, pose: np.ndarray, seconds: float, dt: float) -> SimSnapshot:
    snap = model.step(0.0)
    for _ in range(int(round(seconds / dt))):
        send(model, layout, pose)
        snap = model.step(dt)
    return snap


def run_episode(policy: Any, layout: Layout, settings: ExecutionSettings, sim: SimConfig, box: tuple[float, float],
                cfg: LoopConfig, rng: np.random.Generator) -> EpisodeResult:
    """One box from home: the core ticks at its control rate, the model is called when the core wants a chunk,
    the chunk is submitted `latency_s` later, until the box is placed or `seconds` are up."""
    model = StandInModel(dataclasses.replace(sim, initial_arm_mode=ARM_EXTERNAL, arm_mode_switch_s=0.0))
    dt = settings.execution.tick_dt
    snap = settle_at(model, layout, start_pose(layout), SETTLE_S, dt)
    model.reset_task(box)
    core = ControlStep(layout, settings)
    step_dt = settings.execution.model_action_dt or layout.model_action_dt
    arm = slice(0, 14)
    result = EpisodeResult(box=tuple(box))
    pending: tuple[float, float, np.ndarray] | None = None  # (deliver at, observation time, chunk)
    last_start = -np.inf
    accepted = []  # (observation time, row spacing, chunk, latency): closed_loop.chunk_boundary_steps
    last_raw = None
    for tick in range(int(round(cfg.seconds / dt))):
        now = tick * dt
        if pending is None and core.wants_inference(now) and now - last_start >= step_dt - 1e-9:
            obs = observe(snap, layout, sim, cfg.task, now, rng)
            core.inference_started(now)
            prefix = core.prefix_for(now)
            t0 = time.perf_counter()
            chunk = policy.predict_chunk(obs, seed=cfg.seed, **({"prefix": prefix} if prefix is not None else {}))
            result.model_s.append(time.perf_counter() - t0)
            pending, last_start = (now + cfg.latency_s, now, np.asarray(chunk)), now
        if pending is not None and now >= pending[0] - 1e-9:
            _, obs_time, chunk = pending
            pending = None
            if core.submit(chunk, obs_time, now).accepted:
                accepted.append((obs_time, step_dt, chunk, now - obs_time))
                result.chunks += 1
        out = core.tick(now, measured_action(snap, layout))
        if out.command is not None:
            if last_raw is not None:
                result.largest_tick_step = max(result.largest_tick_step,
                                               float(np.max(np.abs(out.raw[arm] - last_raw[arm]))))
            last_raw = out.raw
            send(model, layout, out.command)
        snap = model.step(dt)
        if snap.task.phase == PLACED:
            break
    result.boundary_steps = chunk_boundary_steps(accepted, arm).tolist()
    result.phase, result.success, result.seconds = snap.task.phase, bool(snap.task.success), snap.time - SETTLE_S
    result.clamps = int(sum(sum(v.values()) if isinstance(v, dict) else int(v)
                            for v in core.report()["safety"].values()))
    return result


def run_boxes(policy: Any, layout: Layout, settings: ExecutionSettings, sim: SimConfig, boxes: Sequence[tuple],
              cfg: LoopConfig, seed: int = 0,
              progress: Callable[[EpisodeResult], None] = lambda _r: None) -> list[EpisodeResult]:
    rng = np.random.default_rng(seed)
    results = []
    for box in boxes:
        results.append(run_episode(policy, layout, settings, sim, tuple(box), cfg, rng))
        progress(results[-1])
    return results


@dataclass(frozen=True)
class CellSummary:
    blend: str
    latency_ms: int
    boxes: int
    placed: int
    boundary_p99: float
    boundary_max: float
    clamps_per_s: float
    tick_step_max: float
    model_ms_p50: float

    def row(self) -> str:
        return (f"| {self.blend} | {self.latency_ms} | **{self.placed}/{self.boxes}** | {self.boundary_p99:.3f} | "
                f"{self.boundary_max:.3f} | {self.clamps_per_s:.1f} | {self.tick_step_max:.4f} | "
                f"{self.model_ms_p50:.1f} |")


TABLE_HEADER = ["| blend | latency (ms) | placed | boundary p99 (rad) | boundary max (rad) | clamps / s | "
                "largest step per tick (rad) | model call p50 (ms, wall) |",
                "|---|---|---|---|---|---|---|---|"]


def summarize(blend: str, latency_s: float, results: Sequence[EpisodeResult]) -> CellSummary:
    steps = np.concatenate([np.asarray(r.boundary_steps) for r in results]) if results else np.zeros(0)
    seconds = sum(r.seconds for r in results)
    model = np.concatenate([np.asarray(r.model_s) for r in results]) * 1e3
    return CellSummary(blend, int(round(latency_s * 1e3)), len(results), sum(r.success for r in results),
                       float(np.percentile(steps, 99)) if steps.size else 0.0,
                       float(steps.max()) if steps.size else 0.0,
                       sum(r.clamps for r in results) / seconds if seconds else 0.0,
                       max((r.largest_tick_step for r in results), default=0.0),
                       float(np.median(model)) if model.size else 0.0)


def unseen_boxes(count: int, seed: int = 0) -> list[tuple[float, float]]:
    """The demo's closed-loop boxes (demo/closed_loop.py eval_boxes): positions no recording used."""
    return eval_boxes(seed, count)


def blend_settings(base: ExecutionSettings, blend: str) -> ExecutionSettings:
    """`rtc-prefix` is blend rtc with GR00T's prefix method in the policy (`apply_method`); the rest are blends."""
    return dataclasses.replace(base, execution=dataclasses.replace(base.execution, blend=blend.split("-")[0]))


def apply_method(policy: Any, blend: str) -> None:
    """blend `rtc` runs the guided method, `rtc-prefix` GR00T's prefix method (policy/rtc.py RtcOptions)."""
    if hasattr(policy, "rtc") and blend.startswith("rtc"):
        policy.rtc = dataclasses.replace(policy.rtc, method="prefix" if blend == "rtc-prefix" else "guided")


def compare(policy: Any, layout: Layout, base: ExecutionSettings, sim: SimConfig, blends: Sequence[str],
            latencies_s: Sequence[float], boxes: Sequence[tuple], cfg: LoopConfig,
            progress: Callable[[str], None] = lambda _line: None) -> list[CellSummary]:
    """Every blend at every latency over the same boxes (and the same noise stream per cell)."""
    cells = []
    for blend in blends:
        apply_method(policy, blend)
        settings = blend_settings(base, blend)
        for latency in latencies_s:
            results = run_boxes(policy, layout, settings, sim, boxes, dataclasses.replace(cfg, latency_s=latency))
            cells.append(summarize(blend, latency, results))
            progress(cells[-1].row())
    return cells
