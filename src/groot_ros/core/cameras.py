"""Checkpoint camera keys -> the robot's cameras, through one table that knows every naming convention.

A checkpoint names its cameras after the dataset it was trained on (`observation.images.cam_head` in the
users' datasets and ours, `observation.images.head_cam_h` in our older ones); the robot's cameras are the
logical names of config/topics (head, wrist_left, wrist_right, chest). config/cameras.yaml lists the aliases
of each; an explicit override ("key=camera, ...") covers anything else. A key that matches nothing is an
error naming the key, the known aliases and the override syntax, never a camera left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import yaml

from groot_ros.core.paths import config_dir

PREFIX = "observation.images."


class CameraNameError(ValueError):
    """A checkpoint camera key that no robot camera answers to; the message says how to map it."""


def load_camera_table(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """Logical camera name -> its aliases (lower case), from config/cameras.yaml."""
    with open(path or config_dir() / "cameras.yaml") as f:
        data = yaml.safe_load(f) or {}
    return {str(cam): tuple(str(a).lower() for a in aliases) for cam, aliases in data.items()}


def short_name(key: str) -> str:
    return key[len(PREFIX):] if key.startswith(PREFIX) else key


def parse_overrides(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """"key=camera, key2=camera2" (key with or without the observation.images. prefix) -> {short key: camera}."""
    if not text:
        return {}
    if isinstance(text, Mapping):
        pairs = list(text.items())
    else:
        pairs = []
        for item in str(text).replace(";", ",").split(","):
            if not item.strip():
                continue
            key, sep, cam = item.partition("=")
            if not sep or not key.strip() or not cam.strip():
                raise CameraNameError(f"camera override '{item.strip()}' is not key=camera (e.g. cam_top=head)")
            pairs.append((key, cam))
    return {short_name(str(k).strip()): str(v).strip() for k, v in pairs}


def map_camera_keys(keys: Sequence[str], overrides: Mapping[str, str] | None = None,
                    table: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Checkpoint keys -> {logical camera: key}; raises CameraNameError listing every key it cannot place."""
    table = table if table is not None else load_camera_table()
    overrides = dict(overrides or {})
    by_alias = {alias: cam for cam, aliases in table.items() for alias in aliases}
    out: dict[str, str] = {}
    problems = []
    for key in keys:
        short = short_name(key)
        cam = overrides.pop(short, None) or by_alias.get(short.lower())
        if cam is None:
            problems.append(f"camera key '{key}' is none of the known names "
                            + "; ".join(f"{c}: {', '.join(a)}" for c, a in table.items()))
            continue
        if cam in out:
            problems.append(f"camera keys '{out[cam]}' and '{key}' both map to the robot's {cam} camera")
            continue
        out[cam] = key
    if overrides:
        problems.append(f"camera override names keys the checkpoint does not have: {sorted(overrides)} "
                        f"(its keys: {[short_name(k) for k in keys]})")
    if problems:
        raise CameraNameError("; ".join(problems) + ". Map a camera explicitly with cameras:=\"<key>=<camera>\" "
                              f"(cameras: {', '.join(table)}) or add an alias to config/cameras.yaml")
    return out
