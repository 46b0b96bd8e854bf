"""The GR00T policy node: the rospy shell around the runtime, the observation store and the execution core.

Threads: a control loop at `control_rate` (never waits for the model), an inference worker (runs the model
whenever the execution core asks for a chunk), the rospy callbacks feeding the store, and the status timer.
All decisions (timing, blending, limits, holds) are made by the ROS-free ExecutionCore; this file moves
data between ROS and it, and owns the lifecycle: start / pause / resume / stop / shutdown.
"""

from __future__ import annotations

import threading
import time
import traceback

import numpy as np
import rospy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger, TriggerResponse

from groot_ros.execution.config import load_execution_settings
from groot_ros.execution.core import ExecutionCore
from groot_ros.core.latency import LatencyStats
from groot_ros.core.layout import Layout
from groot_ros.execution.lifecycle import PAUSED, RUNNING, STOPPED, Lifecycle
from groot_ros.core.observation_log import ObservationLog
from groot_ros.core.store import ObservationStore
from groot_ros.ros.params import NodeParams, read_params


def exit_target(layout: Layout, last: np.ndarray, open_claws: bool, home_pose_deg: list) -> np.ndarray:
    """The pose to move to before handing the robot back: claws open and/or arms home, the rest as it is."""
    channels = layout.channel_values(last)
    if open_claws and "claw" in channels:
        channels["claw"][:] = layout.robot.claw_limits[0]
    if len(home_pose_deg):
        channels["arm"] = np.radians(np.asarray(home_pose_deg, dtype=np.float64))
    return layout.action_from_channels(channels)


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
        self.lifecycle = Lifecycle()
        self.latency = LatencyStats()
        self.obs_log = ObservationLog(params.observation_log_dir) if params.observation_log_dir else None
        self._lock = threading.RLock()
        self._shutting_down = threading.Event()
        self._sequence = 0
        self._last_problems: tuple[str, ...] = ()
        self._last_chunk_obs_time: float | None = None
        self._last_latency = 0.0
        self._worker_error = ""
        self._submitted_at: dict[int, float] = {}  # chunk id -> perf_counter when accepted
        self._executing_chunk = 0
        self.core = ExecutionCore(self.layout, self.settings)

        self.store = ObservationStore(self.layout, decode_size=startup.decode_size)  # JPEGs decoded no larger
        from groot_ros.ros.subscribers import subscribe_store

        self._subs = subscribe_store(self.store)
        self.backend = None if self.dry_run else self._make_backend()
        self._publishers()
        self.runtime = self._load_runtime()
        for name, handler in (("start", self._srv_start), ("pause", self._srv_pause), ("resume", self._srv_resume),
                              ("stop", self._srv_stop)):
            rospy.Service("~" + name, Trigger, handler)
        rospy.on_shutdown(self.shutdown)

        if not params.start_paused:
            result = self._start()
            if not result.ok:
                rospy.logerr("groot_policy: could not start: %s", result.message)
        self._worker = threading.Thread(target=self._worker_loop, name="groot_inference", daemon=True)
        self._worker.start()
        self._control = threading.Thread(target=self._control_loop, name="groot_control", daemon=True)
        self._control.start()
        rospy.Timer(rospy.Duration(1.0 / params.status_rate), self._publish_status)
        rospy.loginfo("groot_policy: ready (%s, backend %s, %s, control %.0f Hz, %s mode, %s)", self.lifecycle.state,
                      "none (dry run)" if self.dry_run else params.backend, self.layout.name,
                      self.settings.execution.control_rate, self.settings.execution.mode,
                      f"checkpoint {self.runtime.info.path}")

    # -- set-up ---------------------------------------------------------------------------------------------

    def _nominal_height(self) -> float:
        """The standing base height /cmd_pose's z offset is relative to (Kuavo sets /com_height)."""
        value = self.params.nominal_height
        if value is None:
            value = rospy.get_param("/com_height", None)
        if value is None:
            rospy.logwarn("groot_policy: no ~nominal_height and no /com_height: torso offsets measured against 0 m")
            value = 0.0
        return float(value)

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
        self._diag_pub = rospy.Publisher("/diagnostics", DiagnosticArray, queue_size=2)
        self._chunk_cls, self._status_cls = ActionChunk, PolicyStatus

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _start(self):
        with self._lock:
            transition = self.lifecycle.request("start")
            if not transition.ok:
                return transition
            if self.backend is not None:
                try:
                    self.backend.start()
                except Exception as exc:  # noqa: BLE001 - reported to the caller, robot untouched
                    return type(transition)(False, self.lifecycle.state, f"backend did not start: {exc}")
            self.nominal_height = self._nominal_height()
            self.core = ExecutionCore(self.layout, self.settings)  # fresh ramp from the measured pose
            self.lifecycle.commit(transition)
            rospy.loginfo("groot_policy: %s%s", transition.message, " (dry run: nothing is commanded)" if self.dry_run else "")
            return transition

    def _stop(self, why: str):
        with self._lock:
            transition = self.lifecycle.request("stop")
            if not transition.ok:
                return transition
            was_commanding = self.lifecycle.commanding
            self.lifecycle.commit(transition)
            if self.backend is not None and was_commanding:
                self._exit_motion()
                self.backend.shutdown()
            rospy.loginfo("groot_policy: stopped (%s); arm modes restored", why)
            return transition

    def _exit_motion(self) -> None:
        """Optional: open the claws and move the arms home before the arm mode is restored."""
        last = self.core.safety.last
        if last is None:
            return
        target = exit_target(self.layout, last, self.params.open_claws_on_exit, list(self.params.home_pose_deg))
        if np.allclose(target, last):
            return
        duration = self.params.home_time_s
        rate = self.settings.execution.control_rate
        for k in range(1, int(duration * rate) + 1):  # through the safety envelope: rate limits apply
            cmd = self.core.safety.apply(last + (target - last) * min(1.0, k / (duration * rate)))
            self.backend.send(self.layout.channel_values(cmd))
            time.sleep(1.0 / rate)

    def _srv_start(self, _req):
        t = self._start()
        return TriggerResponse(t.ok, t.message)

    def _srv_pause(self, _req):
        with self._lock:
            t = self.lifecycle.request("pause")
            if t.ok:
                self.core.hold("paused by operator")
                self.lifecycle.commit(t)
        return TriggerResponse(t.ok, t.message)

    def _srv_resume(self, _req):
        with self._lock:
            t = self.lifecycle.request("resume")
            if t.ok:
                if not self.core.resume():
                    return TriggerResponse(False, "inputs not healthy: " + "; ".join(self.core.watchdog.reasons))
                self.lifecycle.commit(t)
        return TriggerResponse(t.ok, t.message)

    def _srv_stop(self, _req):
        t = self._stop("~stop called")
        return TriggerResponse(t.ok, t.message)

    def shutdown(self) -> None:
        """Ctrl-C, roslaunch kill: stop commanding and restore the robot, even while the model is mid-call."""
        if self._shutting_down.is_set():
            return
        self._shutting_down.set()
        if self.lifecycle.state != STOPPED:
            self._stop("node shutting down")

    # -- control loop ---------------------------------------------------------------------------------------

    def _measured_pose(self) -> np.ndarray | None:
        messages = {}
        for stream in self.layout.used_streams():
            sample = self.store.latest(stream)
            if sample is None:
                return None
            messages[stream] = sample.msg
        try:
            state = self.layout.state_from_messages(messages)
        except (IndexError, AttributeError, TypeError, ValueError):
            return None
        return self.layout.measured_action(state, self.nominal_height)

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
            except Exception:  # noqa: BLE001 - a bug must not leave the robot without commands silently
                rospy.logerr_throttle(1.0, "groot_policy: control tick failed:\n" + traceback.format_exc())
            next_t += dt
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.perf_counter()  # overran: do not try to catch up with a burst

    def _control_tick(self) -> None:
        with self._lock:
            if not self.lifecycle.commanding or self._shutting_down.is_set():
                return
            now = rospy.get_time()
            t0 = time.perf_counter()
            problems = [str(p) for p in self.store.freshness_problems(now)]
            tick = self.core.tick(now, self._measured_pose(), problems, self._worker.is_alive())
            self._last_problems = tuple(problems) or tuple(tick.reasons)
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

    def _worker_loop(self) -> None:
        # Never faster than the model's own rate: during a hold the core keeps asking (to see latency
        # recover), and back-to-back inferences would starve the rest of the machine.
        min_interval = self.settings.execution.model_action_dt or self.layout.model_action_dt
        last_start = -float("inf")
        while not self._shutting_down.is_set() and not rospy.is_shutdown():
            now = rospy.get_time()
            with self._lock:
                wanted = self.lifecycle.state in (RUNNING, PAUSED) and self.core.wants_inference(now)
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
        with self._lock:
            report = self.core.report()
            watchdog = report["watchdog"]
            state = self.lifecycle.state
            if state == RUNNING and watchdog["state"] == "holding":
                state = "holding"
            reason = "; ".join(watchdog["reasons"]) or (f"inference failing: {self._worker_error}" if self._worker_error else "")
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
        msg.stale_streams = list(self._last_problems)
        self._status_pub.publish(msg)
        self._publish_diagnostics(msg, report)

    def _publish_diagnostics(self, status, report: dict) -> None:
        level = DiagnosticStatus.OK if status.state in ("running", "idle", "stopped") else DiagnosticStatus.WARN
        if status.stale_streams and status.state == "holding":
            level = DiagnosticStatus.ERROR
        values = {
            "state": status.state, "dry_run": str(self.dry_run), "chunks": str(status.chunks),
            "stall_ticks": str(status.stalls), "clamps": str(status.clamps),
            "chunk_age_s": f"{status.chunk_age:.3f}", "stale_streams": "; ".join(status.stale_streams),
            "safety": report["safety_summary"], "worker_error": self._worker_error,
        }
        values.update(self.latency.summary())
        diag = DiagnosticStatus(level=level, name="groot_policy", hardware_id=self.layout.robot.version,
                                message=status.reason or status.state,
                                values=[KeyValue(k, v) for k, v in values.items()])
        array = DiagnosticArray(status=[diag])
        array.header.stamp = status.header.stamp
        self._diag_pub.publish(array)


def main() -> None:
    rospy.init_node("groot_policy")
    try:
        PolicyNode(read_params())
    except Exception as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
        rospy.logfatal("groot_policy: %s", exc)
        raise SystemExit(1) from exc
    rospy.spin()
