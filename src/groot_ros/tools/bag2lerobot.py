"""Kuavo rosbags -> a LeRobot v3.0 dataset, built through the node's own layout and observation code.

One bag is one episode. `observation.state` and `observation.images.*` are what the policy node would have
built from the same messages: every frame goes through `streams.ObservationStore` (same fields, indices,
joint-count and NaN checks, same image decoding and rotation). `action` is what was being commanded, read
from the command topics with the layout's `CommandSpec` (arm degrees -> radians, claws, torso pose) and
assembled with `Layout.action_from_channels`. The dataset is written by LeRobot's own writer.

Alignment rule (docs/offline_tools.md says why): a message is timed by its header stamp, or by its bag receive
time when it has no header or a zero stamp (`clock="header"`; `clock="receive"` uses receive times only).
The timeline is t_k = t_start + k / fps, from the latest first message over all required topics to the
earliest last message over the sensor and camera topics. At each t_k every topic contributes its latest
message with time <= t_k (zero-order hold: causal, as the node sees the world). A sensor or camera message
older than its `max_age` (config/topics, or one `tolerance` for all) is a gap; a command holds until the next
one, because that is what the robot keeps executing. A bag with a missing topic, a gap, a wrong message type
or a bad frame is skipped whole, with the reason: a hole in an episode would corrupt the 16-step action
targets that training reads across it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from groot_ros.core.layout import Layout, NameMapError
from groot_ros.core.store import ObservationStore, header_stamp

log = logging.getLogger(__name__)

CLOCKS = ("header", "receive")
# Features only deployment recordings have (tools/deployment_recorder.py): what the policy proposed, and whether the
# operator was in charge. Not `action.*`: LeRobot would take any such feature for a training target.
POLICY_ACTION, INTERVENTION = "policy_action", "intervention"
RUN_FEATURES = (POLICY_ACTION, INTERVENTION)


class SkipEpisode(Exception):
    """This bag cannot become an episode; the message is the reason shown to the user."""


class ConversionError(ValueError):
    """Nothing could be converted, or the arguments cannot work; the message says why."""


@dataclass(frozen=True)
class Source:
    """One topic an episode needs: a state stream, a camera, or a command channel."""

    name: str  # stream or camera name from the config; "command:<channel>" for commands
    topic: str
    msg_type: str
    kind: str  # "stream", "camera" or "command"
    max_age: float | None  # None: a command, held until replaced


@dataclass(frozen=True)
class Alignment:
    """The fixed-rate timeline and, per source, which message (index in bag order) each tick uses and its time."""

    ticks: np.ndarray  # (n,) seconds
    picks: Mapping[str, np.ndarray]  # source name -> (n,) int
    times: Mapping[str, np.ndarray]  # source name -> (n,) seconds: the picked message's time


@dataclass(frozen=True)
class Frame:
    state: np.ndarray
    action: np.ndarray
    images: Mapping[str, np.ndarray]  # observation.images.* key -> uint8 RGB HxWx3


@dataclass(frozen=True)
class ConvertOptions:
    task: str
    fps: int = 10
    clock: str = "header"
    tolerance: float | None = None  # None: each stream's and camera's max_age from config/topics
    tasks: Mapping[str, str] = field(default_factory=dict)  # bag file name or stem -> task
    repo_id: str | None = None  # default: local/<output folder name>
    video: bool = False  # images as PNG in parquet (False) or mp4 through LeRobot's encoder (True)


@dataclass(frozen=True)
class EpisodeOutcome:
    bag: Path
    frames: int
    skipped: str | None = None  # the reason, when the bag was skipped


@dataclass(frozen=True)
class ConversionReport:
    root: Path
    repo_id: str
    fps: int
    outcomes: tuple[EpisodeOutcome, ...]

    @property
    def written(self) -> list[EpisodeOutcome]:
        return [o for o in self.outcomes if o.skipped is None]

    @property
    def skipped(self) -> list[EpisodeOutcome]:
        return [o for o in self.outcomes if o.skipped is not None]

    def summary(self) -> str:
        lines = [f"{len(self.written)} episodes, {sum(o.frames for o in self.written)} frames at {self.fps} fps "
                 f"-> {self.root} (repo_id {self.repo_id})"]
        lines += [f"  skipped {o.bag.name}: {o.skipped}" for o in self.skipped]
        return "\n".join(lines)


# --- ROS-free core -------------------------------------------------------------------------------------------

def with_command_topic(layout: Layout, channel: str, topic: str) -> Layout:
    """The layout with one command channel read from another topic: scripted ("strategy") recordings hold the
    arm action on /mm_kuavo_arm_traj, teleoperated ones on /kuavo_arm_traj (same message and units)."""
    if channel not in layout.commands:
        raise ConversionError(f"no command channel '{channel}' in topics '{layout.topics_name}'")
    commands = dict(layout.commands, **{channel: dataclasses.replace(layout.commands[channel], topic=topic)})
    return dataclasses.replace(layout, commands=commands)


def merge_datasets(roots: Sequence[str | Path], out: str | Path, repo_id: str | None = None) -> Path:
    """Several local LeRobot v3.0 datasets -> one, by LeRobot's own aggregation (lerobot.datasets.aggregate):
    it checks that fps, robot type and features (names included) agree and renumbers episodes and tasks.

    Deployment recordings carry RUN_FEATURES that converted bags and the users' datasets do not: where not every
    dataset has them they are dropped from a copy (LeRobot's dataset_tools.remove_feature) and the merge says so
    in the log; the recordings themselves keep them. Any other difference is LeRobot's refusal, as before."""
    import tempfile

    from lerobot.datasets.aggregate import aggregate_datasets

    sources = [Path(r).resolve() for r in roots]
    missing = [str(r) for r in sources if not (r / "meta" / "info.json").is_file()]
    if missing:
        raise ConversionError(f"not LeRobot datasets (no meta/info.json): {', '.join(missing)}")
    target = Path(out).resolve()
    if target.exists():
        raise ConversionError(f"{target} already exists: choose a new --out")
    features = {r: set(json.loads((r / "meta" / "info.json").read_text())["features"]) for r in sources}
    shared = set.intersection(*features.values())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="groot_merge_", dir=target.parent) as scratch:
        inputs = [_without_run_features(r, sorted(features[r] - shared), Path(scratch)) for r in sources]
        try:
            aggregate_datasets(repo_ids=[f"local/{r.name}" for r in inputs], roots=inputs,
                               aggr_repo_id=repo_id or f"local/{target.name}", aggr_root=target)
        except ValueError as exc:
            raise ConversionError(f"LeRobot refused to merge {', '.join(map(str, sources))}: {exc}") from exc
    return target


def _without_run_features(root: Path, extra: list[str], scratch: Path) -> Path:
    """`root` itself, or a copy without the deployment-only features the other datasets lack."""
    drop = [f for f in extra if f in RUN_FEATURES]
    if not drop:
        return root
    from lerobot.datasets.dataset_tools import remove_feature
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    log.warning("merging %s without %s: not every dataset has them", root, ", ".join(drop))
    copy = scratch / root.name
    remove_feature(LeRobotDataset(f"local/{root.name}", root=root), drop, output_dir=copy, repo_id=f"local/{root.name}")
    return copy


def with_tolerance(layout: Layout, tolerance: float) -> Layout:
    """The layout with one freshness limit (seconds) for every sensor stream and camera."""
    if tolerance <= 0:
        raise ConversionError(f"tolerance must be positive, got {tolerance}")
    streams = {n: dataclasses.replace(s, max_age=tolerance) for n, s in layout.streams.items()}
    cameras = tuple(dataclasses.replace(c, max_age=tolerance) for c in layout.cameras)
    return dataclasses.replace(layout, streams=streams, cameras=cameras)


def sources(layout: Layout) -> list[Source]:
    """Every topic an episode needs: the state's streams, the cameras, the command channels the action fills."""
    out = [Source(n, layout.streams[n].topic, layout.streams[n].msg_type, "stream", layout.streams[n].max_age)
           for n in layout.used_streams()]
    out += [Source(c.name, c.topic, c.msg_type, "camera", c.max_age) for c in layout.cameras]
    out += [Source(f"command:{ch}", layout.commands[ch].topic, layout.commands[ch].msg_type, "command", None)
            for ch in layout.action_channels]
    return out


def message_time(msg: Any, receive_time: float, clock: str) -> float:
    """The header stamp when asked for and present (non-zero), else the receive time."""
    stamp = header_stamp(msg) if clock == "header" else None
    return receive_time if stamp is None else stamp


def align(times: Mapping[str, Sequence[float]], srcs: Sequence[Source], fps: float) -> Alignment:
    """The timeline and zero-order-hold picks for one episode; SkipEpisode says why there is none."""
    missing = [f"{s.name} ({s.topic})" for s in srcs if len(times.get(s.name, ())) == 0]
    if missing:
        raise SkipEpisode(f"no messages on {', '.join(missing)}")
    arrays = {s.name: np.asarray(times[s.name], dtype=np.float64) for s in srcs}
    start = max(float(arrays[s.name].min()) for s in srcs)
    end = min(float(arrays[s.name].max()) for s in srcs if s.kind != "command")
    if end < start:
        raise SkipEpisode(f"topics do not overlap in time: the last one starts {start - end:.3f} s after "
                          "the first sensor/camera topic ends")
    ticks = start + np.arange(int(math.floor((end - start) * fps + 1e-9)) + 1) / fps
    picks, picked_times = {}, {}
    for s in srcs:
        t = arrays[s.name]
        order = np.argsort(t, kind="stable")
        picks[s.name] = order[np.searchsorted(t[order], ticks, side="right") - 1]
        picked_times[s.name] = t[picks[s.name]]
        if s.max_age is not None:
            age = ticks - picked_times[s.name]
            worst = int(np.argmax(age))
            if age[worst] > s.max_age:
                raise SkipEpisode(f"{s.name} ({s.topic}): gap of {age[worst]:.3f} s at {ticks[worst] - start:.2f} s "
                                  f"into the episode (limit {s.max_age:.3f} s)")
    return Alignment(ticks=ticks, picks=picks, times=picked_times)


def build_frames(layout: Layout, srcs: Sequence[Source], alignment: Alignment, messages: Mapping[str, Sequence[Any]],
                 camera_messages: Iterable[tuple[str, int, Any]]) -> Iterator[Frame]:
    """Frames in timeline order, each built by the node's ObservationStore from the picked messages.

    `messages` holds every stream and command message (bag order). Camera messages arrive as a stream of
    (camera, index in bag order, msg) and are kept only until the last frame that uses them, so a long bag of
    images never sits in memory.
    """
    store = ObservationStore(layout)
    cams = [s.name for s in srcs if s.kind == "camera"]
    last_use = {c: {int(i): k for k, i in enumerate(alignment.picks[c])} for c in cams}
    kept: dict[str, dict[int, Any]] = {c: {} for c in cams}
    read = {c: 0 for c in cams}
    fed: dict[str, int] = {}
    by_index: set[str] = set()  # command channels whose messages name nothing (said once)

    def frame(k: int) -> Frame:
        tick = float(alignment.ticks[k])
        where = f"{tick - alignment.ticks[0]:.2f} s into the episode"
        channels = {}
        for s in srcs:
            i = int(alignment.picks[s.name][k])
            if s.kind == "command":
                channel = s.name.split(":", 1)[1]
                try:
                    channels[channel], by_name = layout.command_values(channel, messages[s.name][i])
                except NameMapError as exc:
                    raise SkipEpisode(f"{where}: {exc}") from exc
                if not by_name and layout.commands[channel].field and channel not in by_index:
                    by_index.add(channel)
                    log.warning("%s: the %s command on %s names no joints: read by index, in the layout's order",
                                where, channel, s.topic)
            elif fed.get(s.name) != i:  # re-feeding the same message would decode the same image again
                store.update(s.name, kept[s.name][i] if s.kind == "camera" else messages[s.name][i],
                             float(alignment.times[s.name][k]))
                fed[s.name] = i
        result = store.build_observation(now=tick, task="")
        if result.observation is None:
            raise SkipEpisode(f"{where}: {result.summary()}")
        try:
            action = layout.action_from_channels(channels)
        except (IndexError, ValueError) as exc:
            raise SkipEpisode(f"{where}: a command does not fit the layout's channels: {exc}") from exc
        if not np.all(np.isfinite(action)):
            raise SkipEpisode(f"{where}: non-finite command {action.tolist()}")
        return Frame(state=result.observation.state, action=action, images=dict(result.observation.images))

    k, n = 0, len(alignment.ticks)
    for cam, index, msg in camera_messages:
        read[cam] = index + 1
        if index in last_use[cam]:
            kept[cam][index] = msg
        while k < n and all(read[c] > alignment.picks[c][k] for c in cams):
            yield frame(k)
            for c in cams:
                if last_use[c][int(alignment.picks[c][k])] == k:
                    del kept[c][int(alignment.picks[c][k])]
            k += 1
    if cams and k < n:
        raise SkipEpisode(f"camera messages ended before frame {k} of {n}")
    for k in range(k, n):  # no cameras in the layout
        yield frame(k)


def dataset_features(layout: Layout, image_shapes: Mapping[str, tuple[int, int, int]], video: bool) -> dict:
    """LeRobot feature spec with per-dimension names from the layout: humanoid_groot's names (arm_joint_1,
    left_claw_state, ...), so a converted dataset trains together with theirs (merge_datasets)."""
    features: dict[str, dict] = {
        "observation.state": {"dtype": "float32", "shape": (layout.state_dim,), "names": layout.state_feature_names},
        "action": {"dtype": "float32", "shape": (layout.action_dim,), "names": layout.action_feature_names},
    }
    for key in layout.camera_keys:
        features[key] = {"dtype": "video" if video else "image", "shape": tuple(image_shapes[key]),
                         "names": ["height", "width", "channels"]}
    return features


def task_for(bag: Path, options: ConvertOptions) -> str:
    return options.tasks.get(bag.name) or options.tasks.get(bag.stem) or options.task


# --- rosbag edges --------------------------------------------------------------------------------------------

def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """Bags named on the command line, and every *.bag under the folders named (sorted: episode order)."""
    bags: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            bags += sorted(path.rglob("*.bag"))
        elif path.is_file() and path.suffix == ".bag":
            bags.append(path)
        else:
            raise ConversionError(f"{path} is neither a .bag file nor a folder")
    if not bags:
        raise ConversionError(f"no .bag files in {', '.join(str(p) for p in paths)}")
    return bags


def scan_bag(path: Path, srcs: Sequence[Source], clock: str) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """First pass: every message time, and the (small) stream and command messages themselves."""
    import rosbag

    by_topic: dict[str, list[Source]] = defaultdict(list)
    for s in srcs:
        by_topic[s.topic].append(s)
    times: dict[str, list[float]] = {s.name: [] for s in srcs}
    messages: dict[str, list[Any]] = {s.name: [] for s in srcs if s.kind != "camera"}
    try:
        bag = rosbag.Bag(str(path))
    except (rosbag.ROSBagException, OSError) as exc:
        raise SkipEpisode(f"cannot open bag: {exc}") from exc
    with bag:
        recorded = bag.get_type_and_topic_info().topics
        wrong = [f"{s.topic} is {recorded[s.topic].msg_type}, the layout expects {s.msg_type}"
                 for s in srcs if s.topic in recorded and recorded[s.topic].msg_type != s.msg_type]
        if wrong:
            raise SkipEpisode("; ".join(wrong) + " (is --topics right?)")
        for topic, msg, t in bag.read_messages(topics=list(by_topic)):
            for s in by_topic[topic]:
                times[s.name].append(message_time(msg, t.to_sec(), clock))
                if s.kind != "camera":
                    messages[s.name].append(msg)
    return times, messages


def read_cameras(path: Path, cams: Sequence[Source]) -> Iterator[tuple[str, int, Any]]:
    """Second pass: camera messages in bag order as (camera, index among that camera's messages, msg)."""
    import rosbag

    by_topic: dict[str, list[str]] = defaultdict(list)
    for s in cams:
        by_topic[s.topic].append(s.name)
    count = {s.name: 0 for s in cams}
    if not cams:
        return
    with rosbag.Bag(str(path)) as bag:
        for topic, msg, _t in bag.read_messages(topics=list(by_topic)):
            for name in by_topic[topic]:
                yield name, count[name], msg
                count[name] += 1


def episode_frames(path: Path, layout: Layout, options: ConvertOptions) -> Iterator[Frame]:
    """The frames of one bag (raises SkipEpisode, possibly after some frames: the caller discards them)."""
    srcs = sources(layout)
    times, messages = scan_bag(path, srcs, options.clock)
    alignment = align(times, srcs, options.fps)
    yield from build_frames(layout, srcs, alignment, messages, read_cameras(path, [s for s in srcs if s.kind == "camera"]))


def convert(bags: Sequence[str | Path], out_root: str | Path, layout: Layout, options: ConvertOptions,
            progress: bool = True) -> ConversionReport:
    """Writes one episode per usable bag into a new LeRobot v3.0 dataset at `out_root`."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    if options.clock not in CLOCKS:
        raise ConversionError(f"clock must be one of {CLOCKS}, got '{options.clock}'")
    if options.fps <= 0:
        raise ConversionError(f"fps must be positive, got {options.fps}")
    root = Path(out_root).resolve()
    if root.exists():
        raise ConversionError(f"{root} already exists: LeRobot writes a new dataset; choose a new --out")
    paths = find_bags(bags)
    if abs(options.fps * layout.model_action_dt - 1.0) > 1e-6:
        log.warning("fps %s differs from layout '%s' (model_action_dt %.3f s = %.1f fps): the model's chunk rows "
                    "would not match the node's timing", options.fps, layout.name, layout.model_action_dt,
                    1 / layout.model_action_dt)
    if options.tolerance is not None:
        layout = with_tolerance(layout, options.tolerance)
    repo_id = options.repo_id or f"local/{root.name}"
    dataset = None
    outcomes = []
    bar = tqdm(paths, desc="bag2lerobot", unit="bag", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.name)
        frames = 0
        task = task_for(path, options)
        try:
            for frame in episode_frames(path, layout, options):
                if dataset is None:
                    shapes = {k: img.shape for k, img in frame.images.items()}
                    dataset = LeRobotDataset.create(repo_id=repo_id, fps=options.fps, root=root,
                                                    features=dataset_features(layout, shapes, options.video),
                                                    robot_type=f"kuavo_{layout.robot.version}", use_videos=options.video)
                for key, img in frame.images.items():
                    expected = tuple(dataset.features[key]["shape"])
                    if img.shape != expected:
                        raise SkipEpisode(f"{key}: image {img.shape} differs from the dataset's {expected}")
                dataset.add_frame({"observation.state": frame.state.astype(np.float32),
                                   "action": frame.action.astype(np.float32), **frame.images, "task": task})
                frames += 1
            if frames == 0:
                raise SkipEpisode("no frames")
            dataset.save_episode()
            outcomes.append(EpisodeOutcome(path, frames))
        except SkipEpisode as exc:
            if dataset is not None and dataset.episode_buffer and dataset.episode_buffer["size"] > 0:
                dataset.clear_episode_buffer()
            log.warning("skipping %s: %s", path, exc)
            outcomes.append(EpisodeOutcome(path, 0, str(exc)))
    if dataset is None:
        reasons = "\n  ".join(f"{o.bag.name}: {o.skipped}" for o in outcomes)
        raise ConversionError(f"no episode could be converted:\n  {reasons}")
    dataset.finalize()
    return ConversionReport(root=root, repo_id=repo_id, fps=options.fps, outcomes=tuple(outcomes))


def load_task_map(path: str | Path) -> dict[str, str]:
    """A YAML/JSON mapping bag file name (or stem) -> task string."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConversionError(f"{path}: expected a mapping of bag name -> task string")
    return {str(k): v for k, v in data.items()}
