"""Policy runs and operator takeovers -> LeRobot v3.0 episodes, written while the robot works (DAgger).

The dataset has the layout's features under the names bag2lerobot writes (`observation.state`, `action`,
`observation.images.*`, per-dimension names from the layout), so recorded runs merge and train with converted
bags and with the users' own datasets, plus two of its own:
- `policy_action`: what the policy proposed at that frame (NaN where it had no plan, e.g. before its first chunk).
  Not named `action.*` or `observation.*`: LeRobot treats every feature starting with those as a model input or
  target (datasets/utils.py dataset_to_policy_features).
- `intervention`: True where the operator, not the policy, commanded the robot; `action` is then the operator's
  command, which is what DAgger trains on.

Why a thread and a frame budget: the control loop hands a frame over in microseconds and never waits for the disk
or the video encoder; when the writer falls behind by more than `max_pending_frames` a frame is dropped and
counted (the status says so), the caller is never blocked.

Why every episode is finalized on its own: LeRobot's v3.0 writer keeps one parquet file open across episodes and
writes its footer only in finalize(), so a crash would lose every episode in that file. Closing the writers after
each saved episode and reopening the dataset for the next (what `lerobot-record --resume` does) puts each episode
in complete files: a crash or Ctrl-C loses at most the episode in progress.

Per-trial results LeRobot's episode table has no column for (success, duration, takeovers, why it ended) go to
`meta/trials.jsonl`, one line per saved episode, keyed by episode index.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.observation import Observation
from groot_ros.execution.recording import RecordedFrame, TrialOutcome
from groot_ros.tools.bag2lerobot import INTERVENTION, POLICY_ACTION, dataset_features

log = logging.getLogger(__name__)

TRIALS_FILE = "meta/trials.jsonl"


class RecorderError(ValueError):
    """The recording cannot start (an existing dataset that does not fit); the message says why."""


@dataclass(frozen=True)
class RecorderStatus:
    root: str
    episodes_saved: int  # since this recorder opened the dataset
    frames_in_episode: int  # handed over for the episode in progress (some may still be queued)
    frames_dropped: int  # because the writer fell behind (never silently: /diagnostics shows it)
    frames_unusable: int  # whose observation could not be built at their time (stale or broken input)
    pending_frames: int
    error: str  # the last write error ("" when none); the episode it hit is dropped, recording goes on


class DeploymentRecorder:
    """Writes episodes into one LeRobot dataset at `root` (created on the first frame, or resumed when it exists
    with the same features, so many runs and node launches append to one dataset)."""

    def __init__(self, root: str | Path, layout: Layout, fps: int, *, video: bool = True,
                 max_pending_frames: int = 100, repo_id: str | None = None):
        self.root = Path(root).resolve()
        self.layout = layout
        self.fps = int(fps)
        self.video = video
        self.repo_id = repo_id or f"local/{self.root.name}"
        self.max_pending_frames = max_pending_frames
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._in_episode = 0
        self._dropped = 0
        self._unusable = 0
        self._saved = 0
        self._error = ""
        self._check_existing()
        self._thread = threading.Thread(target=self._run, name="groot_recorder", daemon=True)
        self._thread.start()

    # -- the caller's side (control loop, services): never blocks on the disk --------------------------------

    def add(self, frame: RecordedFrame) -> bool:
        """Queues a frame for the episode in progress; False (and counted) when the writer is too far behind."""
        with self._lock:
            if self._pending >= self.max_pending_frames:
                self._dropped += 1
                return False
            self._pending += 1
            self._in_episode += 1
        self._queue.put(("frame", frame))
        return True

    def save_episode(self, outcome: TrialOutcome = TrialOutcome()) -> int:
        """Ends the episode in progress and saves it (in the background); returns its frame count (0: nothing)."""
        with self._lock:
            frames, self._in_episode = self._in_episode, 0
        if frames:
            self._queue.put(("save", outcome))
        return frames

    def discard_episode(self) -> int:
        """Drops the episode in progress; returns how many frames it had."""
        with self._lock:
            frames, self._in_episode = self._in_episode, 0
        if frames:
            self._queue.put(("discard", None))
        return frames

    def close(self, timeout: float | None = None, save: bool = True) -> bool:
        """Saves (or drops) the episode in progress, waits for the writer; False if it did not finish in time."""
        if save:
            self.save_episode(TrialOutcome(reason="recorder closed"))
        else:
            self.discard_episode()
        self._queue.put(("close", None))
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def flush(self, timeout: float | None = None) -> None:
        """Waits until everything handed over so far is written (tests, and a clean ~stop)."""
        done = threading.Event()
        self._queue.put(("flush", done))
        done.wait(timeout)

    def problem(self) -> str:
        s = self.status()
        lost = [f"{s.frames_dropped} frames dropped (the writer fell behind)" if s.frames_dropped else "",
                f"{s.frames_unusable} frames left out (inputs unusable then)" if s.frames_unusable else "",
                f"write error, that episode dropped: {s.error}" if s.error else ""]
        lost = [line for line in lost if line]
        return f"recorder ({self.root}): " + "; ".join(lost) if lost else ""

    def status(self) -> RecorderStatus:
        with self._lock:
            return RecorderStatus(str(self.root), self._saved, self._in_episode, self._dropped, self._unusable,
                                  self._pending, self._error)

    # -- the writer thread ---------------------------------------------------------------------------------

    def _features(self, images: Mapping[str, np.ndarray]) -> dict:
        features = dataset_features(self.layout, {k: img.shape for k, img in images.items()}, self.video)
        action = features["action"]
        features[POLICY_ACTION] = {"dtype": "float32", "shape": action["shape"], "names": action["names"]}
        features[INTERVENTION] = {"dtype": "bool", "shape": (1,), "names": None}
        return features

    def _check_existing(self) -> None:
        """An existing dataset must be one this layout can append to: refuse now, not at the first frame."""
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            if self.root.exists() and any(self.root.iterdir()):
                raise RecorderError(f"{self.root} exists and is not a LeRobot dataset: choose an empty or new folder")
            return
        info = json.loads(info_path.read_text())
        problems = []
        if info.get("fps") != self.fps:
            problems.append(f"fps {info.get('fps')} (recording at {self.fps})")
        features = info.get("features", {})
        for key, names in (("observation.state", self.layout.state_feature_names),
                           ("action", self.layout.action_feature_names)):
            if features.get(key, {}).get("names") != names:
                problems.append(f"{key} names {features.get(key, {}).get('names')} (this layout: {names})")
        missing = sorted({POLICY_ACTION, INTERVENTION, *self.layout.camera_keys} - set(features))
        if missing:
            problems.append(f"no features {missing}")
        if problems:
            raise RecorderError(f"cannot append to the dataset at {self.root}: " + "; ".join(problems))

    def _open(self, images: Mapping[str, np.ndarray]):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        if (self.root / "meta" / "info.json").is_file():
            dataset = LeRobotDataset(self.repo_id, root=self.root)
            expected = {k: tuple(dataset.features[k]["shape"]) for k in images}
            wrong = {k: img.shape for k, img in images.items() if img.shape != expected[k]}
            if wrong:
                raise RecorderError(f"images {wrong} differ from the dataset's {expected}")
            return dataset
        return LeRobotDataset.create(repo_id=self.repo_id, fps=self.fps, root=self.root,
                                     features=self._features(images), robot_type=f"kuavo_{self.layout.robot.version}",
                                     use_videos=self.video)

    def _run(self) -> None:
        dataset = None
        failed = False  # the episode in progress hit an error: its remaining frames are dropped
        intervened = 0  # frames of the episode in progress the operator commanded
        while True:
            kind, item = self._queue.get()
            try:
                if kind == "frame":
                    with self._lock:
                        self._pending -= 1
                    if failed:
                        continue
                    obs = item.observe()
                    if obs is None:
                        with self._lock:
                            self._unusable += 1
                        continue
                    if dataset is None:
                        dataset = self._open(obs.images)
                    dataset.add_frame(self._lerobot_frame(item, obs))
                    intervened += bool(item.intervention)
                elif kind == "save":
                    if dataset is not None and not failed and dataset.episode_buffer["size"] > 0:
                        index = dataset.episode_buffer["episode_index"]
                        dataset.save_episode()
                        dataset.finalize()  # complete files now: a later crash cannot take this episode
                        self._write_trial(index, intervened, item)
                        with self._lock:
                            self._saved += 1
                    dataset, failed, intervened = None, False, 0
                elif kind == "discard":
                    if dataset is not None and dataset.episode_buffer is not None and dataset.episode_buffer["size"]:
                        dataset.clear_episode_buffer()
                    failed, intervened = False, 0
                elif kind == "flush":
                    item.set()
                elif kind == "close":
                    return
            except Exception as exc:  # noqa: BLE001 - a full disk drops this episode, never the robot's run
                with self._lock:
                    self._error = f"{type(exc).__name__}: {exc}"
                log.warning("recorder at %s: %s; the episode in progress is dropped", self.root, self._error)
                failed, dataset = kind == "frame", None

    @staticmethod
    def _lerobot_frame(frame: RecordedFrame, obs: Observation) -> dict:
        return {"observation.state": np.asarray(obs.state, np.float32),
                "action": np.asarray(frame.action, np.float32),
                POLICY_ACTION: np.asarray(frame.policy_action, np.float32),
                INTERVENTION: np.array([frame.intervention]), **obs.images, "task": frame.task}

    def _write_trial(self, index: int, intervened: int, outcome: TrialOutcome) -> None:
        with (self.root / TRIALS_FILE).open("a") as f:
            f.write(json.dumps({"episode_index": int(index), "intervention_frames": intervened, **asdict(outcome)})
                    + "\n")
