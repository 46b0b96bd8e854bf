"""The GR00T policy node: ROS wiring around the ROS-free PolicyRunner (execution/runner.py).

This file reads the parameters, loads the policy (policy/loading.py: only the ChunkPolicy interface is seen),
subscribes the observation store, offers the services, and publishes what the runner produces: every command
through ros/commander.py (the one command path: backend and ~command_preview, stamped with its tick time),
every chunk on ~action_chunk, and the runner's status on ~status and /diagnostics. The loops, the bookkeeping,
start and stop, and their locking live in the runner; the start-up and exit sequences in the commander.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import rospy
from diagnostic_msgs.msg import KeyValue
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, SetBoolResponse, Trigger, TriggerResponse

from groot_ros.core.layout import Layout
from groot_ros.core.observation_log import ObservationLog
from groot_ros.core.store import ObservationStore
from groot_ros.execution.config import load_execution_settings
from groot_ros.execution.inputs import InputMonitor
from groot_ros.execution.motion import exit_target
from groot_ros.execution.pacer import Pacer
from groot_ros.execution.runner import ChunkOut, PolicyRunner, RunnerClocks, RunnerStatus
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.execution.state_machine import STOPPED, Transition
from groot_ros.ros.commander import Commander, nominal_height, other_commanders
from groot_ros.ros.params import NodeParams, read_params

COMMANDERS_PERIOD_S = 1.0  # how often the master is asked who else publishes on the command topics
RECORDER_CLOSE_S = 20.0  # on shutdown: how long the recorder may take to save the episode in progress
LOG = {"info": rospy.loginfo, "warn": rospy.logwarn, "error": rospy.logerr}


def restore_word(restore_ok: bool | None, dry_run: bool) -> str:
    """PolicyStatus.restore: what the last exit read back."""
    if restore_ok is None:
        return "dry run" if dry_run else ""
    return "restored" if restore_ok else "not restored"


class PolicyNode:
    def __init__(self, params: NodeParams) -> None:
        self.params = params
        from groot_ros.ros.startup import resolve_startup

        startup = resolve_startup(params)  # layout and task from the checkpoint, robot and message checks
        rospy.loginfo("groot_policy: start-up\n%s", startup.report)
        self.layout: Layout = startup.layout
        # what was chosen, for tools and tests to read as data rather than from the block above
        rospy.set_param("~resolved", {"layout": self.layout.name, "task": startup.task,
                                      "cameras": [[c.key, c.name] for c in self.layout.cameras]})
        # config/execution.yaml (or ~execution_config), with ~execution/<section>/<key> params on top
        self.settings = load_execution_settings(params.execution_config, params.execution_overrides)
        self.dry_run = params.dry_run
        self._action_names = self.layout.action_names  # per tick in ~command_preview: build once
        self._shutting_down = threading.Event()
        self._start_pose = self._load_start_pose()  # before anything moves: a bad source fails the launch
        if params.home_pose_deg:  # validated against this layout now, not on the way out
            exit_target(self.layout, np.zeros(self.layout.action_dim), False, params.home_pose_deg)

        store = ObservationStore(self.layout, decode_size=startup.decode_size)  # JPEGs decoded no larger
        watchdog = self.settings.watchdog
        inputs = InputMonitor(watchdog.frozen_camera_s, watchdog.max_stamp_offset_s)
        from groot_ros.ros.diagnostics import NodeDiagnostics
        from groot_ros.ros.subscribers import subscribe_store

        self.diagnostics = NodeDiagnostics(self.layout, store.sources)
        self._publishers()
        backend = None if self.dry_run else self._make_backend()
        self.commander = Commander(self.layout, self.settings, backend, lambda: self.runner.measured_pose(),
                                   self._should_abort, self._preview)
        policy = self._load_policy(startup)
        self.recorder, recording = self._recording(store, startup.task)
        self.operator = None
        if recording is not None:
            from groot_ros.ros.operator import OperatorCommands

            self.operator = OperatorCommands(self.layout, rospy.get_name())
        self.runner = PolicyRunner(
            self.layout, self.settings, policy, store, inputs, self.commander.command, task=startup.task,
            seed=params.seed, nominal_height=lambda: nominal_height(params.nominal_height),
            sequences=None if self.dry_run else self, on_chunk=self._publish_chunk,
            obs_log=ObservationLog(params.observation_log_dir) if params.observation_log_dir else None,
            log=lambda level, message: LOG[level]("groot_policy: %s", message),
            clocks=RunnerClocks(now=rospy.get_time), recording=recording,
            operator_command=self.operator.over if self.operator else lambda pose: pose)
        self._subs = subscribe_store(store, self._on_message)
        for name, handler in (("start", self._srv_start), ("pause", self._srv_pause), ("resume", self._srv_resume),
                              ("stop", self._srv_stop), ("episode", self._srv_episode),
                              ("discard", self._srv_discard), ("reset", self._srv_reset)):
            rospy.Service("~" + name, Trigger, handler)
        rospy.Service("~takeover", SetBool, self._srv_takeover)
        rospy.on_shutdown(self.shutdown)

        self.runner.start_worker(self._keep_going)
        threading.Thread(target=self.runner.run_control, args=(self._keep_going,), name="groot_control",
                         daemon=True).start()
        threading.Thread(target=self._status_loop, name="groot_status", daemon=True).start()
        if not self.dry_run:
            threading.Thread(target=self._commanders_loop, name="groot_commanders", daemon=True).start()
        if not params.start_paused:
            threading.Thread(target=self._start_logged, name="groot_startup", daemon=True).start()
        rospy.loginfo("groot_policy: ready (%s, backend %s, %s, control %.0f Hz, %s mode, checkpoint %s)",
                      self.runner.machine.state, "none (dry run)" if self.dry_run else params.backend,
                      self.layout.name, self.settings.execution.control_rate, self.settings.execution.mode,
                      params.policy_server or params.checkpoint)

    # -- set-up ---------------------------------------------------------------------------------------------

    def _load_start_pose(self) -> np.ndarray | None:
        if not self.params.start_pose_from:
            return None
        from groot_ros.ros.start_pose import load_start_pose

        pose = load_start_pose(self.params.start_pose_from, self.layout)
        rospy.loginfo("groot_policy: start pose from %s: arms %s deg", self.params.start_pose_from,
                      np.round(np.degrees(self.layout.channel_values(pose)["arm"]), 1).tolist())
        return pose

    def _on_message(self, name: str) -> None:
        """Subscriber hook: rate/stamp diagnostics and the frozen-camera / clock-jump monitor."""
        sample = self.runner.store.latest(name)
        if sample is not None:
            self.diagnostics.message(name, sample.stamp)
            self.runner.note_message(name)

    def _recording(self, store: ObservationStore, task: str):
        """~record_dir: the deployment recorder (LeRobot v3.0 episodes at the model's rate) and the runner's side of
        it; (None, None) without one. An existing dataset that does not fit is a start-up error naming why."""
        p = self.params
        if p.record_dir is None:
            return None, None
        from groot_ros.execution.recording import RunRecording
        from groot_ros.tools.deployment_recorder import DeploymentRecorder

        fps = round(1.0 / (self.settings.execution.model_action_dt or self.layout.model_action_dt))
        recorder = DeploymentRecorder(p.record_dir, self.layout, fps, video=p.record_video)
        verdict = None
        if p.task_success_topic:
            from std_msgs.msg import Bool

            verdict = {"done": None}
            self._success_sub = rospy.Subscriber(p.task_success_topic, Bool,
                                                 lambda msg: verdict.update(done=bool(msg.data)), queue_size=2)
        rospy.loginfo("groot_policy: recording runs and takeovers into %s at %d fps%s", p.record_dir, fps,
                      f", trial results from {p.task_success_topic}" if verdict else "")
        return recorder, RunRecording(recorder, fps, store, task, (lambda: verdict["done"]) if verdict else lambda: None)

    def _make_backend(self):
        from groot_ros.ros.backends.config import load_backend_config
        from groot_ros.ros.backends.factory import make_backend

        config = load_backend_config(self.params.backend_config, direct_to_wbc=self.params.direct_to_wbc)
        return make_backend(self.params.backend, self.layout, config)

    def _load_policy(self, startup):
        """The ChunkPolicy of ~checkpoint, or of ~policy_server (test/rostest/faulty_policy_node wraps it). A
        server's reply must come one control period before the watchdog's limit, so the hold names the server."""
        from groot_ros.policy.loading import load_policy

        self._limit_torch_threads()
        p = self.params
        limit = self.settings.watchdog.max_inference_latency_s
        return load_policy(p.checkpoint if not p.policy_server else None, self.layout, base_config=p.base_config,
                           eagle_assets=p.eagle_assets, device=p.device, dtype=p.dtype, attention=p.attention,
                           fast=p.fast_inference, task=startup.task, server=p.policy_server,
                           image_sizes={c.key: startup.decode_size[c.name] for c in self.layout.cameras
                                        if c.name in startup.decode_size},
                           server_timeout_s=max(limit - self.settings.execution.tick_dt, limit / 2),
                           report=lambda line: rospy.loginfo("groot_policy: %s", line))

    def _limit_torch_threads(self) -> None:
        """On CPU, torch would take every core for one inference and starve the control loop: keep one free."""
        import os
        import sys

        import torch

        # The control thread shares the GIL with tokenization, image decoding and message deserialization:
        # a 1 ms switch interval (Python's default is 5 ms) bounds how long a tick waits for it.
        sys.setswitchinterval(self.params.gil_switch_interval_s)
        threads = self.params.torch_threads
        if threads <= 0 and self.params.device == "cpu":
            threads = max(1, (os.cpu_count() or 2) - 1)
        if threads > 0:
            torch.set_num_threads(threads)
            rospy.loginfo("groot_policy: torch uses %d CPU threads", threads)

    def _publishers(self) -> None:
        from groot_ros.msg import ActionChunk, PolicyStatus

        self._chunk_pub = rospy.Publisher("~action_chunk", ActionChunk, queue_size=4)
        self._preview_pub = rospy.Publisher("~command_preview", JointState, queue_size=10)
        self._status_pub = rospy.Publisher("~status", PolicyStatus, queue_size=2, latch=True)
        self._chunk_cls, self._status_cls = ActionChunk, PolicyStatus

    def _keep_going(self) -> bool:
        return not self._shutting_down.is_set() and not rospy.is_shutdown()

    def _should_abort(self) -> bool:
        return self.runner.aborting or rospy.is_shutdown() and not self._shutting_down.is_set()

    # -- the sequences the runner runs (runner.Sequences) ----------------------------------------------------

    def startup(self) -> None:
        self.commander.startup(self._start_pose)

    def exit_steps(self, safety: SafetyEnvelope) -> tuple[list[str], bool | None]:
        """Optional exit motion (claws open, arms home) through the policy's own envelope, then the restore."""
        p = self.params
        return self.commander.exit_steps(
            safety, lambda last: exit_target(self.layout, last, p.open_claws_on_exit, p.home_pose_deg), p.home_time_s)

    # -- services -------------------------------------------------------------------------------------------

    def _start(self) -> Transition:
        """Refused, touching nothing, while another node commands the robot."""
        other = "" if self.dry_run else other_commanders(self.layout, rospy.get_name())
        if other:
            return Transition(False, self.runner.machine.state, f"not starting: {other}")
        return self.runner.start(self._keep_going)

    def _start_logged(self) -> None:
        result = self._start()
        (rospy.loginfo if result.ok else rospy.logerr)("groot_policy: %s", result.message)

    def _srv_start(self, _req):
        t = self._start()
        return TriggerResponse(t.ok, t.message)

    def _srv_pause(self, _req):
        t = self.runner.pause()
        return TriggerResponse(t.ok, t.message)

    def _srv_resume(self, _req):
        t = self.runner.resume()
        if t.ok:
            rospy.loginfo("groot_policy: %s", t.message)
        return TriggerResponse(t.ok, t.message)

    def _srv_stop(self, _req):
        t = self.runner.stop("~stop called")
        return TriggerResponse(t.ok, t.message)

    def _srv_reset(self, _req):
        """The next trial on the same model: stop (the episode saved, the robot restored), then the start-up sequence
        (claws open, start pose; claw latch freed) and the policy again."""
        stopped = self.runner.stop("~reset: next trial")
        if not stopped.ok and self.runner.machine.state != STOPPED:
            return TriggerResponse(False, f"reset: {stopped.message}")
        started = self._start()
        (rospy.loginfo if started.ok else rospy.logerr)("groot_policy: reset: %s", started.message)
        return TriggerResponse(started.ok, f"reset: {stopped.message}; {started.message}")

    def _srv_takeover(self, req):
        """true: the operator commands the robot (the node stops commanding, records the operator's commands);
        false: hand back, refused while an input is unhealthy or another node still publishes on the command
        topics."""
        t = self.runner.takeover(bool(req.data))
        if t.ok and not req.data and self.operator is not None:
            self.operator.forget()  # the next takeover records its own commands, not this one's last
        (rospy.loginfo if t.ok else rospy.logwarn)("groot_policy: %s", t.message)
        return SetBoolResponse(t.ok, t.message)

    def _srv_episode(self, _req):
        t = self.runner.end_episode(keep=True)
        rospy.loginfo("groot_policy: %s", t.message)
        return TriggerResponse(t.ok, t.message)

    def _srv_discard(self, _req):
        t = self.runner.end_episode(keep=False)
        rospy.loginfo("groot_policy: %s", t.message)
        return TriggerResponse(t.ok, t.message)

    def shutdown(self) -> None:
        """Ctrl-C, SIGTERM, roslaunch kill: stop commanding and restore the robot, even while the model is mid-call;
        the last status says what the restore read back."""
        if self._shutting_down.is_set():
            return
        self._shutting_down.set()
        result = self.runner.shutdown()
        if result is not None and not result.ok and self.runner.machine.state != STOPPED:
            rospy.logwarn("groot_policy: shutdown: %s", result.message)
        if self.recorder is not None and not self.recorder.close(timeout=RECORDER_CLOSE_S):
            rospy.logwarn("groot_policy: the recorder did not finish writing within %.0f s: the episode in progress "
                          "may be lost (earlier ones are complete)", RECORDER_CLOSE_S)
        with contextlib.suppress(rospy.ROSException):  # a topic already closed: the log has said it
            self._publish_status()

    # -- publishing -----------------------------------------------------------------------------------------

    def _preview(self, stamp: float, command: np.ndarray) -> None:
        msg = JointState(name=self._action_names, position=list(command))
        msg.header.stamp = rospy.Time.from_sec(stamp)
        self._preview_pub.publish(msg)

    def _publish_chunk(self, out: ChunkOut) -> None:
        msg = self._chunk_cls()
        msg.header.stamp = rospy.Time.from_sec(out.done)
        msg.observation_stamp = rospy.Time.from_sec(out.observation.stamp)
        msg.sequence = out.sequence
        msg.components = [c.name for c in self.layout.action]
        msg.dim_names = self._action_names
        msg.steps, msg.dims = out.chunk.shape
        msg.step_dt = self.settings.execution.model_action_dt or self.layout.model_action_dt
        msg.data = out.chunk.ravel().tolist()
        msg.inference_latency = out.done - out.observation.stamp
        self._chunk_pub.publish(msg)

    def _status_loop(self) -> None:
        """~status and /diagnostics at ~status_rate on the monotonic clock, whatever happens: a rospy.Timer's thread
        dies for good when ROS time jumps back (use_sim_time), and one failed publish must not end the reports."""
        pacer = Pacer(1.0 / self.params.status_rate)
        failures = 0
        while self._keep_going():
            pacer.wait()
            try:
                self._publish_status()
            except Exception as exc:  # noqa: BLE001 - logged (every 100th), the next tick tries again
                if failures % 100 == 0:
                    rospy.logerr("groot_policy: publishing ~status or /diagnostics failed (%d times): %s: %s",
                                 failures + 1, type(exc).__name__, exc)
                failures += 1

    def _commanders_loop(self) -> None:
        """While commanding, once a second: hold as long as another node publishes on the command topics. A thread
        of its own, so a slow master never delays ~status; without a master the last verdict stands."""
        pacer = Pacer(COMMANDERS_PERIOD_S)
        while self._keep_going():
            pacer.wait()
            try:
                line = other_commanders(self.layout, rospy.get_name()) if self.runner.machine.commanding else ""
            except Exception:  # noqa: BLE001 - no master (socket error) or a master error: the last verdict stands
                continue
            self.runner.report_problem("commanders", line)

    def _publish_status(self) -> None:
        from groot_ros.ros.diagnostics import snapshot_of

        s: RunnerStatus = self.runner.status()
        msg = self._status_cls()
        msg.header.stamp = rospy.Time.from_sec(s.stamp)
        msg.state, msg.reason, msg.dry_run = s.state, s.reason, self.dry_run
        msg.chunks, msg.stalls, msg.clamps = s.chunks, s.stall_ticks, s.clamps
        msg.inference_latency, msg.chunk_age = s.inference_latency, s.chunk_age
        msg.stale_streams = list(s.input_problems)
        msg.control_ticks, msg.missed_ticks = s.control_ticks, s.missed_ticks
        msg.restore = restore_word(s.restore_ok, self.dry_run)
        msg.timings = [KeyValue(k, v) for k, v in s.latency.items()]
        self._status_pub.publish(msg)
        self.diagnostics.update(snapshot_of(s, self.dry_run, self.settings.watchdog.max_inference_latency_s))


def same_name_running(argv: list[str], default: str = "groot_policy") -> str:
    """Why not to start ("" to go ahead): a node of our name that is registered and answers. Starting anyway
    makes the master shut that one down mid-motion (its exit steps restoring the arm mode under the new one)."""
    import xmlrpc.client

    import rosgraph
    import rosgraph.names

    name = rosgraph.names.ns_join(rosgraph.names.get_ros_namespace(argv=argv),
                                  rosgraph.names.load_mappings(argv).get("__name", default))
    try:
        uri = rosgraph.Master("/groot_policy_name_check").lookupNode(name)
        pid = xmlrpc.client.ServerProxy(uri).getPid("/groot_policy_name_check")[2]
    except Exception:  # noqa: BLE001 - unknown to the master, or registered but gone: the name is free
        return ""
    return (f"a node named {name} is already running (pid {pid}) and would be shut down mid-motion: stop it "
            f"first (rosservice call {name}/stop, then end its launch), or launch this one with another name")


def main() -> None:
    import sys

    busy = same_name_running(sys.argv)
    if busy:
        rospy.logfatal("groot_policy: not starting: %s", busy)
        raise SystemExit(1)
    rospy.init_node("groot_policy")
    try:
        PolicyNode(read_params())
    except Exception as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
        rospy.logfatal("groot_policy: %s", exc)
        raise SystemExit(1) from exc
    rospy.spin()
