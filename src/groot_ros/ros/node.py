"""The GR00T policy node: the rospy shell around the runtime, the observation store and the execution core.

Threads: a control loop at `control_rate` (never waits for the model), an inference worker (runs the model
whenever the execution core asks for a chunk), the rospy callbacks feeding the store, and the status timer.
All decisions (timing, blending, limits, holds) are made by the ROS-free ExecutionCore and the node's one
StateMachine (execution/state_machine.py); this file moves data between ROS and them and runs, through
ros/commander.py (the command path replay-episode shares), the two sequences that command the robot outside the
policy: the start-up sequence (head, claws, arm mode, slow move to the start pose, direct-to-WBC) and the exit
steps (exit motion, direct-to-WBC off, arm mode restored and read back), each step of which runs whatever failed
before it.

Locks: `_lock` guards the core and the state machine for short sections only (never a sleep under it);
`_motion_lock` is held by whoever streams commands outside the control loop (start-up, exit), so a ~stop
during the start-up waits for the sequence to notice and end, then restores.
"""

from __future__ import annotations

import threading
import time
import traceback

import numpy as np
import rospy
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger, TriggerResponse

from groot_ros.core.latency import LatencyStats
from groot_ros.core.layout import Layout
from groot_ros.core.observation_log import ObservationLog
from groot_ros.core.store import ObservationStore, header_stamp
from groot_ros.execution.config import load_execution_settings
from groot_ros.execution.core import ExecutionCore
from groot_ros.execution.inputs import InputMonitor, digest
from groot_ros.execution.motion import exit_target
from groot_ros.execution.state_machine import RUNNING, STARTING, STOPPED, StateMachine, Transition
from groot_ros.ros.commander import Commander, Interrupted, nominal_height
from groot_ros.ros.params import NodeParams, read_params


class PolicyNode:
    def __init__(self, params: NodeParams) -> None:
        self.params = params
        from groot_ros.ros.startup import resolve_startup

        startup = resolve_startup(params)  # layout and task from the checkpoint, robot and message checks
        rospy.loginfo("groot_policy: start-up\n%s", startup.report)
        self.layout: Layout = startup.layout
        # config/execution.yaml (or ~execution_config), with ~execution/<section>/<key> params on top
        self._action_names = self.layout.action_names  # per tick in ~command_preview: build once
        self.settings = load_execution_settings(params.execution_config, params.execution_overrides)
        self.task = startup.task
        self.dry_run = params.dry_run
        self.seed = params.seed
        self.nominal_height = 0.0  # resolved at start, when the robot's parameters are there
        self.machine = StateMachine()
        self.latency = LatencyStats()
        self.obs_log = ObservationLog(params.observation_log_dir) if params.observation_log_dir else None
        self._lock = threading.RLock()
        self._motion_lock = threading.Lock()
        self._abort = threading.Event()  # set by stop/shutdown: sequences end at their next tick
        self._shutting_down = threading.Event()
        self._restore_ok: bool | None = None
        self._pose_now: np.ndarray | None = None
        self._sequence = 0
        self._last_problems: tuple[str, ...] = ()
        self._last_chunk_obs_time: float | None = None
        self._last_latency = 0.0
        self._worker_error = ""
        self._submitted_at: dict[int, float] = {}  # chunk id -> perf_counter when accepted
        self._executing_chunk = 0
        self.core = ExecutionCore(self.layout, self.settings, self.machine)
        self._start_pose = self._load_start_pose()  # before anything moves: a bad source fails the launch
        if params.home_pose_deg:  # validated against this layout now, not on the way out
            exit_target(self.layout, np.zeros(self.layout.action_dim), False, params.home_pose_deg)

        self.store = ObservationStore(self.layout, decode_size=startup.decode_size)  # JPEGs decoded no larger
        watchdog = self.settings.watchdog
        self.inputs = InputMonitor(watchdog.frozen_camera_s, watchdog.max_stamp_offset_s)
        self._cameras = {c.name for c in self.layout.cameras}
        from groot_ros.ros.diagnostics import NodeDiagnostics
        from groot_ros.ros.subscribers import subscribe_store

        self.diagnostics = NodeDiagnostics(self.layout, self.store.sources)
        self._subs = subscribe_store(self.store, self._on_message)
        self.backend = None if self.dry_run else self._make_backend()
        self._publishers()
        self.commander = None if self.backend is None else Commander(
            self.layout, self.settings, self.backend, self._measured_pose, self._should_abort, self._preview)
        self.runtime = self._load_runtime()
        for name, handler in (("start", self._srv_start), ("pause", self._srv_pause), ("resume", self._srv_resume),
                              ("stop", self._srv_stop)):
            rospy.Service("~" + name, Trigger, handler)
        rospy.on_shutdown(self.shutdown)

        self._worker = self._start_worker()
        self._control = threading.Thread(target=self._control_loop, name="groot_control", daemon=True)
        self._control.start()
        rospy.Timer(rospy.Duration(1.0 / params.status_rate), self._publish_status)
        if not params.start_paused:
            threading.Thread(target=self._start_logged, name="groot_startup", daemon=True).start()
        rospy.loginfo("groot_policy: ready (%s, backend %s, %s, control %.0f Hz, %s mode, %s)", self.machine.state,
                      "none (dry run)" if self.dry_run else params.backend, self.layout.name,
                      self.settings.execution.control_rate, self.settings.execution.mode,
                      f"checkpoint {self.runtime.info.path}")

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
        sample = self.store.latest(name)
        if sample is None:
            return
        self.diagnostics.message(name, sample.stamp)
        data = getattr(sample.msg, "data", None) if name in self._cameras else None
        content = digest(bytes(data)) if data is not None and self.inputs.frozen_after_s is not None else None
        self.inputs.update(name, sample.received, header_stamp(sample.msg), content)

    def _make_backend(self):
        from groot_ros.ros.backends.config import load_backend_config
        from groot_ros.ros.backends.factory import make_backend

        config = load_backend_config(self.params.backend_config, direct_to_wbc=self.params.direct_to_wbc)
        return make_backend(self.params.backend, self.layout, config)

    def _load_runtime(self):
        from groot_ros.policy.runtime import GrootRuntime

        self._limit_torch_threads()
        p = self.params
        t0 = time.perf_counter()
        checkpoint = p.checkpoint
        runtime = GrootRuntime.load(checkpoint, self.layout, base_config=p.base_config, eagle_assets=p.eagle_assets,
                                    device=p.device, dtype=p.dtype, attention=p.attention, fast=p.fast_inference)
        rospy.loginfo("groot_policy: loaded %s in %.1f s on %s/%s (%s attention, %s inference path)", checkpoint,
                      time.perf_counter() - t0, runtime.device, runtime.dtype, runtime.attention.implementation,
                      runtime.engine.name)
        return runtime

    def _limit_torch_threads(self) -> None:
        """On CPU, torch would take every core for one inference and starve the control loop: keep one free."""
        import os

        import torch

        # The control thread shares the GIL with tokenization, image decoding and message deserialization:
        # a 1 ms switch interval (Python's default is 5 ms) bounds how long a tick waits for it.
        import sys

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

    # -- start ----------------------------------------------------------------------------------------------

    def _start_logged(self) -> None:
        result = self._start()
        (rospy.loginfo if result.ok else rospy.logerr)("groot_policy: %s", result.message)

    def _start(self) -> Transition:
        """~start: restart a dead worker; from idle/stopped run the start-up sequence, then the policy."""
        with self._lock:
            restarted = self._restart_worker_if_dead()
            transition = self.machine.start()
            if not transition.ok:
                if restarted:
                    return Transition(True, self.machine.state, f"inference worker restarted ({self.machine.state})")
                return transition
            self._abort.clear()
            self._restore_ok = None
            self.nominal_height = nominal_height(self.params.nominal_height)
        try:
            with self._motion_lock:
                if self._abort.is_set():
                    raise Interrupted("stopped before the start-up began")
                self._startup_sequence()
        except Interrupted as exc:
            return Transition(False, self.machine.state, f"start-up interrupted: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure of a step: restore and say which
            with self._lock:
                self.machine.start_failed(str(exc))
            report = self._run_exit_steps()
            return Transition(False, self.machine.state, f"start-up failed: {exc}; {report}")
        with self._lock:
            if self.machine.state != STARTING:  # stopped meanwhile
                return Transition(False, self.machine.state, "start-up interrupted by stop")
            self.core = ExecutionCore(self.layout, self.settings, self.machine)  # fresh ramp from the measured pose
            transition = self.machine.started()
        return Transition(True, transition.state, transition.message
                          + (" (dry run: nothing is commanded)" if self.dry_run else ""))

    def _startup_sequence(self) -> None:
        """ros/commander.py's sequence; under _motion_lock (not _lock): the control loop does not command while
        starting."""
        if self.commander is not None:  # dry run: nothing to command, modes untouched
            self.commander.startup(self._start_pose)

    def _preview(self, command: np.ndarray) -> None:
        self._preview_pub.publish(JointState(name=self._action_names, position=list(command)))

    def _should_abort(self) -> bool:
        return self._abort.is_set() or rospy.is_shutdown() and not self._shutting_down.is_set()

    # -- stop -----------------------------------------------------------------------------------------------

    def _stop(self, why: str) -> Transition:
        with self._lock:
            transition = self.machine.stop(why)
            if not transition.ok:
                return transition
            self._abort.set()
        report = self._run_exit_steps()
        return Transition(bool(self._restore_ok) or self.backend is None, self.machine.state,
                          f"stopped ({why}); {report}")

    def _run_exit_steps(self) -> str:
        """Every step runs whatever failed before; the arm mode is read back. stopping -> stopped."""
        with self._motion_lock:  # waits for a running start-up sequence to see the abort
            self._abort.clear()  # the exit steps themselves must run
            lines = self._exit_steps()
            self._abort.set()
        report = "; ".join(lines)
        with self._lock:
            self.machine.stopped(report)
        (rospy.loginfo if self._restore_ok is not False else rospy.logerr)("groot_policy: %s: %s",
                                                                            self.machine.state, report)
        return report

    def _exit_steps(self) -> list[str]:
        """Optional exit motion (claws open, arms home) through the policy's own envelope, then the restore."""
        if self.commander is None:
            return ["dry run: nothing commanded, arm modes untouched"]
        p = self.params
        lines, self._restore_ok = self.commander.exit_steps(
            self.core.safety, lambda last: exit_target(self.layout, last, p.open_claws_on_exit, p.home_pose_deg),
            p.home_time_s)
        return lines

    # -- operator services ------------------------------------------------------------------------------------

    def _srv_start(self, _req):
        t = self._start()
        return TriggerResponse(t.ok, t.message)

    def _srv_pause(self, _req):
        with self._lock:
            t = self.core.pause("paused by operator")
        return TriggerResponse(t.ok, t.message)

    def _srv_resume(self, _req):
        with self._lock:
            t = self.core.resume(rospy.get_time(), self._refresh_problems(), self._worker.is_alive())
        if t.ok:
            rospy.loginfo("groot_policy: %s", t.message)
        return TriggerResponse(t.ok, t.message)

    def _srv_stop(self, _req):
        t = self._stop("~stop called")
        return TriggerResponse(t.ok, t.message)

    def shutdown(self) -> None:
        """Ctrl-C, SIGTERM, roslaunch kill: stop commanding and restore the robot, even while the model is mid-call."""
        if self._shutting_down.is_set():
            return
        self._shutting_down.set()
        result = self._stop("node shutting down")
        if not result.ok and self.machine.state != STOPPED:
            rospy.logwarn("groot_policy: shutdown: %s", result.message)

    # -- control loop ---------------------------------------------------------------------------------------

    def _measured_pose(self) -> tuple[np.ndarray | None, str]:
        """The pose in action space, or None and why (a missing stream, a malformed message)."""
        return self.store.measured_action(self.nominal_height)

    def _refresh_problems(self) -> list[str]:
        """Every input problem now (called under _lock): stale/missing streams, malformed messages, frozen
        cameras, clock jumps. The watchdog adds inference and worker problems."""
        now = rospy.get_time()
        problems = [str(p) for p in self.store.freshness_problems(now)] + self.inputs.problems(now)
        pose, problem = self._measured_pose()
        if problem and self.core.started:
            problems.append(problem)
        self._pose_now = pose
        self._last_problems = tuple(problems)
        return problems

    def _control_loop(self) -> None:
        dt = self.settings.execution.tick_dt
        next_t = time.perf_counter()
        last_tick = None
        while not self._shutting_down.is_set() and not rospy.is_shutdown():
            now_perf = time.perf_counter()
            if last_tick is not None:
                self.latency.record("control_period", now_perf - last_tick)
            last_tick = now_perf
            try:
                self._control_tick()
            except Exception as exc:  # noqa: BLE001 - a bug must not look like running: hold and say why
                with self._lock:
                    self.machine.hold([f"control tick failed: {type(exc).__name__}: {exc}"])
                rospy.logerr_throttle(1.0, "groot_policy: control tick failed (holding):\n" + traceback.format_exc())
            next_t += dt
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.perf_counter()  # overran: do not try to catch up with a burst

    def _control_tick(self) -> None:
        with self._lock:
            if not self.machine.commanding or self._shutting_down.is_set():
                return
            t0 = time.perf_counter()
            problems = self._refresh_problems()
            tick = self.core.tick(rospy.get_time(), self._pose_now, problems, self._worker.is_alive())
            if tick.command is None:
                return
            if tick.chunk_id != self._executing_chunk:
                accepted = self._submitted_at.pop(tick.chunk_id, None)
                if accepted is not None:  # chunk accepted -> its first command: the non-model part of obs -> command
                    self.latency.record("chunk_to_command", time.perf_counter() - accepted)
                for old in [k for k in self._submitted_at if k < tick.chunk_id]:  # replaced before they ran
                    del self._submitted_at[old]
                self._executing_chunk = tick.chunk_id
            if self.backend is not None:
                self.backend.send(self.layout.channel_values(tick.command))
            self.latency.record("tick_compute", time.perf_counter() - t0)
        self._preview_pub.publish(JointState(name=self._action_names, position=list(tick.command)))

    # -- inference worker -----------------------------------------------------------------------------------

    def _start_worker(self) -> threading.Thread:
        worker = threading.Thread(target=self._worker_main, name="groot_inference", daemon=True)
        worker.start()
        return worker

    def _restart_worker_if_dead(self) -> bool:
        if self._worker.is_alive() or self._shutting_down.is_set():
            return False
        rospy.logwarn("groot_policy: restarting the inference worker (it died: %s)", self._worker_error)
        self.core.abandon_inference(rospy.get_time(), "the inference worker died")
        self._worker_error = ""
        self._worker = self._start_worker()
        return True

    def _worker_main(self) -> None:
        """The worker dies on a bug outside the model call; the watchdog then holds with the reason."""
        try:
            self._worker_loop()
        except Exception as exc:  # noqa: BLE001 - recorded for ~status; ~start restarts the worker
            self._worker_error = f"worker died: {type(exc).__name__}: {exc}"
            rospy.logerr("groot_policy: inference " + self._worker_error + "\n" + traceback.format_exc())

    def _worker_loop(self) -> None:
        # Never faster than the model's own rate: during a hold the core keeps asking (to see latency
        # recover), and back-to-back inferences would starve the rest of the machine.
        min_interval = self.settings.execution.model_action_dt or self.layout.model_action_dt
        last_start = -float("inf")
        while not self._shutting_down.is_set() and not rospy.is_shutdown():
            now = rospy.get_time()
            with self._lock:
                wanted = self.machine.state == RUNNING and self.core.wants_inference(now)
            if not wanted or now - last_start < min_interval:
                time.sleep(0.002)
                continue
            t_obs = time.perf_counter()
            result = self.store.build_observation(now, self.task)
            if result.ok:
                self.latency.record("observation_build", time.perf_counter() - t_obs)
            else:
                rospy.logwarn_throttle(2.0, "groot_policy: holding inference, observation not usable: " + result.summary())
                time.sleep(0.01)
                continue
            obs = result.observation
            last_start = now
            with self._lock:
                self.core.inference_started(now)
                core = self.core
            try:
                chunk = self.runtime.predict_chunk(obs, seed=self.seed)
            except Exception as exc:  # noqa: BLE001 - counted and held by the watchdog, never crashes the node
                self._worker_error = f"{type(exc).__name__}: {exc}"
                rospy.logerr_throttle(2.0, "groot_policy: inference failed: " + self._worker_error)
                with self._lock:
                    core.inference_failed(rospy.get_time(), self._worker_error)
                continue
            done = rospy.get_time()
            if self._shutting_down.is_set():
                return  # the robot is being restored: a late chunk must not move it
            with self._lock:
                if core is not self.core:
                    continue  # restarted meanwhile: the chunk belongs to the old run
                submitted = core.submit(chunk, obs.stamp, done)
                if submitted.accepted:
                    self._submitted_at[submitted.chunk_id] = time.perf_counter()
            self._last_latency = done - obs.stamp
            self._worker_error = ""
            self.latency.record("inference", self._last_latency)
            if self.obs_log is not None:  # under the sequence number the chunk is published with
                self.obs_log.write(self._sequence, obs, chunk, self.seed)
            self._publish_chunk(chunk, obs.stamp, done)
            if not submitted.accepted:
                rospy.logwarn_throttle(2.0, f"groot_policy: chunk {self._sequence} not executed: {submitted.reason}")

    def _publish_chunk(self, chunk: np.ndarray, obs_time: float, done: float) -> None:
        msg = self._chunk_cls()
        msg.header.stamp = rospy.Time.from_sec(done)
        msg.observation_stamp = rospy.Time.from_sec(obs_time)
        msg.sequence = self._sequence
        msg.components = [c.name for c in self.layout.action]
        msg.dim_names = self._action_names
        msg.steps, msg.dims = chunk.shape
        msg.step_dt = self.settings.execution.model_action_dt or self.layout.model_action_dt
        msg.data = chunk.ravel().tolist()
        msg.inference_latency = done - obs_time
        self._chunk_pub.publish(msg)
        self._sequence += 1
        self._last_chunk_obs_time = obs_time

    # -- status and diagnostics -----------------------------------------------------------------------------

    def _publish_status(self, _event=None) -> None:
        from groot_ros.ros.diagnostics import Snapshot

        with self._lock:
            report = self.core.report()
            state = self.machine.state
            reason = self.machine.reason()
            if self._worker_error and self._worker_error not in reason:
                reason = "; ".join(r for r in (reason, f"inference: {self._worker_error}") if r)
            problems = list(self._last_problems) if self.machine.commanding else []
        now = rospy.get_time()
        clamps = sum(sum(v.values()) if isinstance(v, dict) else int(v) for v in report["safety"].values())
        msg = self._status_cls()
        msg.header.stamp = rospy.Time.from_sec(now)
        msg.state, msg.reason, msg.dry_run = state, reason, self.dry_run
        msg.chunks = self._sequence
        msg.stalls = int(report["scheduler"]["stall_ticks"])
        msg.clamps = int(clamps)
        msg.inference_latency = self._last_latency
        msg.chunk_age = now - self._last_chunk_obs_time if self._last_chunk_obs_time else -1.0
        msg.stale_streams = problems
        self._status_pub.publish(msg)
        values = {"chunks": str(msg.chunks), "stall_ticks": str(msg.stalls), "holds": str(report["state"]["trips"]),
                  "chunk_age_s": f"{msg.chunk_age:.3f}", "input_problems": "; ".join(problems),
                  "worker_error": self._worker_error, **self.latency.summary()}
        self.diagnostics.update(Snapshot(
            state=state, reason=reason, dry_run=self.dry_run, values=values, inference_latency_s=self._last_latency,
            max_inference_latency_s=self.settings.watchdog.max_inference_latency_s, clamps=int(clamps),
            safety_summary=report["safety_summary"], restore_ok=self._restore_ok))


def main() -> None:
    rospy.init_node("groot_policy")
    try:
        PolicyNode(read_params())
    except Exception as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
        rospy.logfatal("groot_policy: %s", exc)
        raise SystemExit(1) from exc
    rospy.spin()
