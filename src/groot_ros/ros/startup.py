"""What the node runs with, decided once at start-up from the checkpoint and the robot, logged in one block.

- topics:=auto picks, among the robot's camera topic sets (config/robots: topic_sets), the one whose head
  camera is being published (else the first, and says so);
- the layout and camera mapping come from the checkpoint (policy/matching.py) unless layout:= names one;
- the robot's /legRealDof + /waistRealDof, when set, must agree with the robot config's arm slice;
- every Kuavo message/service class we use must have the robot's md5sum (ros/compat.py);
- the task is task:=, else the checkpoint's training data's, else groot_ros's sentence.
Any contradiction is a StartupError naming what and where, before the model is even loaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping

import rosgraph
import rospy

from groot_ros.core.layout import Layout, load_robot, read_topics
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.matching import choose_layout, choose_task, decode_sizes, describe
from groot_ros.ros.compat import MessageVersionError, check_message_versions
from groot_ros.ros.params import NodeParams

TOPICS_WAIT_S = 3.0


class StartupError(RuntimeError):
    """The checkpoint, the robot config and the robot disagree; the message says what and where."""


@dataclass(frozen=True)
class Startup:
    layout: Layout
    task: str
    report: str  # the one log block
    decode_size: Mapping[str, tuple[int, int]]  # camera -> (h, w) the model needs: ObservationStore(decode_size=)


def pick_topic_set(robot: str, wait_s: float = TOPICS_WAIT_S) -> tuple[str, str]:
    """(topic set, why): the first of the robot's sets whose head camera topic is advertised."""
    sets = load_robot(robot).topic_sets or ("real",)
    heads = {name: (read_topics(name).get("cameras") or {}).get("head", {}).get("topic") for name in sets}
    master = rosgraph.Master("/groot_ros_topic_check")
    deadline = time.monotonic() + wait_s
    while True:
        published = {t for t, _ in master.getPublishedTopics("/")}
        for name in sets:
            if heads[name] in published:
                return name, f"its head camera {heads[name]} is published"
        if time.monotonic() >= deadline:
            return sets[0], (f"none of {', '.join(f'{s} ({heads[s]})' for s in sets)} is published yet: "
                             f"using robot {robot}'s first set")
        time.sleep(0.2)


def arm_slice_problem(layout: Layout) -> str | None:
    """The robot's own DOF params against the robot config (the SDK reads the arms after them)."""
    params = layout.robot.arm_start_params
    if not params or not rospy.has_param("/" + params[0]):
        return None
    values = {p: int(rospy.get_param("/" + p, 0)) for p in params}
    start = sum(values.values())
    if start == layout.robot.arm_slice[0]:
        return None
    return (f"robot:={layout.robot.version} (config/robots/{layout.robot.version}.yaml) puts the arms at joints "
            f"{layout.robot.arm_slice[0]}:{layout.robot.arm_slice[1]}, but this robot's "
            + " + ".join(f"/{p} ({v})" for p, v in values.items())
            + f" = {start}: is robot:= the right version?")


def resolve_startup(params: NodeParams, version_wait_s: float = 5.0) -> Startup:
    topics, topics_why = params.topics, "topics:="
    if topics == "auto":
        topics, topics_why = pick_topic_set(params.robot)
    served = []
    try:
        source = params.checkpoint
        if params.policy_server:  # the server's metadata stands for the checkpoint, checked the same way
            from groot_ros.policy.remote import API_KEY_ENV, fetch_metadata, remote_inputs

            metadata = fetch_metadata(params.policy_server, os.environ.get(API_KEY_ENV, ""))
            source = remote_inputs(metadata, params.policy_server)
            served = [f"served by {params.policy_server} ({metadata.engine}; checkpoint sha256 "
                      f"{metadata.checkpoint_sha256[:12]})"]
        choice = choose_layout(source, params.robot, topics, params.layout, params.cameras)
    except CheckpointError as exc:
        where = f"policy server {params.policy_server}: " if params.policy_server and "policy server" not in str(exc) \
            else ""
        raise StartupError(where + str(exc)) from exc
    layout = choice.layout
    problem = arm_slice_problem(layout)
    if problem:
        raise StartupError(problem)
    try:
        unchecked = check_message_versions(layout, commanding=not params.dry_run, sdk=params.backend == "sdk",
                                           wait_s=version_wait_s)
    except MessageVersionError as exc:
        raise StartupError(str(exc)) from exc
    task, task_source = choose_task(params.task, choice.inputs.data)
    extra = served + [f"topic set '{topics}' <- {topics_why}"]
    if layout.robot.services is not None and not params.dry_run:
        s = layout.robot.services
        extra.append(f"services arm mode {s.arm_mode} (read {s.arm_mode_get}), quick mode {s.quick_mode} "
                     f"({s.quick_mode_type})")
    extra += [f"messages {line}" for line in unchecked] or ["messages md5sums match the robot's"]
    return Startup(layout, task, describe(choice, task, task_source, extra), decode_sizes(choice))
