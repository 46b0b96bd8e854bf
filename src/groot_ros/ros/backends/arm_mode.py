"""The arm-mode handshake: external control while we command, the robot's own mode back afterwards.

The reference deployment switched to external control and direct-to-WBC on start and never switched
back, leaving the arms frozen in external mode (and bypassing MPC smoothing) for whoever came next.
The services are the robot version's (config/robots/*.yaml): the biped's /arm_traj_change_mode and
direct-to-WBC, the wheel-arm's /wheel_arm_change_arm_ctrl_mode and quick mode (std_srvs/SetBool).

Order matters on Kuavo (humanoidController): the direct-to-WBC arm target is zero-initialised, so switching it
on before an arm target at the measured pose has been published drives the arms toward zero (or a stale
target). This class therefore only switches; the caller (the node's start-up and exit sequences) streams the
measured pose first, then calls `set_direct_to_wbc`. The switch to external control takes the controller up to
2 s, so `engage` reads the mode back until it says so; `restore` reads it back too and reports what it found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import rospy
from std_srvs.srv import SetBool

from groot_ros.core.layout import RobotServices
from groot_ros.ros.backends.config import ArmModeConfig, BackendError
from groot_ros.ros import messages  # changeArmCtrlMode looked up per call: start-up picks the robot's version


@dataclass(frozen=True)
class RestoreReport:
    """What the exit did to the arm mode, as read back from the controller (never what we hoped)."""

    ok: bool  # direct-to-WBC off (if it was on) and the mode read back equals the one we restored
    lines: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(self.lines)


class ArmModeSwitch:
    def __init__(self, config: ArmModeConfig, services: RobotServices | None):
        if services is None:
            raise BackendError("the robot config has no `services` (config/robots/*.yaml): cannot switch arm modes")
        self.config = config
        self.services = services
        self.previous_mode: int | None = None
        self._engaged = False
        self.direct_to_wbc_on = False

    @property
    def engaged(self) -> bool:
        return self._engaged

    def engage(self) -> None:
        """External control, verified by reading the mode back within `switch_timeout` s."""
        cfg = self.config
        self.previous_mode = self._read_mode()
        ok, message = self._call(self.services.arm_mode, cfg.external)
        if not ok:
            raise BackendError(f"cannot switch the arms to external control ({cfg.external}) via "
                               f"{self.services.arm_mode}: {message}")
        self._engaged = True
        mode = self._wait_for_mode(cfg.external, cfg.switch_timeout)
        if mode != cfg.external:
            report = self.restore()
            raise BackendError(f"arm mode reads {mode} {cfg.switch_timeout:g} s after switching to external control "
                               f"({cfg.external}) via {self.services.arm_mode}; {report}")
        rospy.loginfo(f"arm control mode {self.previous_mode} -> {cfg.external} (external, read back)")

    def set_direct_to_wbc(self, enabled: bool) -> tuple[bool, str]:
        """Direct-to-WBC (biped) or quick arm mode (wheel-arm). Call only with the measured pose already published
        as the arm target (see the module doc)."""
        ok, message = self._quick_mode(enabled)
        if ok:
            self.direct_to_wbc_on = enabled
            rospy.loginfo(f"direct-to-WBC arm control {'on' if enabled else 'off'} via {self.services.quick_mode}")
        return ok, message

    def restore(self) -> RestoreReport:
        """Idempotent; never raises, so every exit step runs. Direct-to-WBC off, the previous mode back, and the
        mode read back: the report says what the controller answered, not what was asked."""
        cfg = self.config
        lines: list[str] = []
        ok = True
        if self.direct_to_wbc_on:
            done, message = self.set_direct_to_wbc(False)
            if not done:
                ok = False
                lines.append(f"direct-to-WBC arm control may still be ON ({self.services.quick_mode}: {message})")
        if not self._engaged:
            return RestoreReport(ok, tuple(lines) or ("arm mode untouched",))
        mode = self.previous_mode if self.previous_mode is not None else cfg.restore_if_unknown
        called, message = self._call(self.services.arm_mode, mode)
        read = self._wait_for_mode(mode, cfg.switch_timeout) if called else self._read_mode(quiet=True)
        if read == mode:
            self._engaged = False
            lines.append(f"arm mode restored to {mode} (read back)"
                         + ("" if self.previous_mode is not None else ", previous mode unknown"))
        else:
            ok = False
            lines.append(f"arm mode NOT restored: asked for {mode} via {self.services.arm_mode} "
                         f"({'accepted' if called else 'failed: ' + message}), reads "
                         f"{'nothing (no answer)' if read is None else read}")
        (rospy.loginfo if ok else rospy.logerr)("groot_policy: " + "; ".join(lines))
        return RestoreReport(ok, tuple(lines))

    def _wait_for_mode(self, mode: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            read = self._read_mode(quiet=True)
            if read == mode or time.monotonic() > deadline or rospy.is_shutdown() and read is None:
                return read
            time.sleep(0.05)

    def _read_mode(self, quiet: bool = False) -> int | None:
        try:
            rospy.wait_for_service(self.services.arm_mode_get, timeout=self.config.service_timeout)
            return int(rospy.ServiceProxy(self.services.arm_mode_get, messages.changeArmCtrlMode)().mode)
        except (rospy.ROSException, rospy.ServiceException, OSError) as exc:
            if not quiet:
                rospy.logwarn(f"cannot read the arm control mode from {self.services.arm_mode_get} ({exc}); "
                              f"will restore mode {self.config.restore_if_unknown} on shutdown")
            return None

    def _quick_mode(self, on: bool) -> tuple[bool, str]:
        """Direct-to-WBC (biped, changeArmCtrlMode 1/0) or quick arm mode (wheel-arm, std_srvs/SetBool)."""
        service = self.services.quick_mode
        if self.services.quick_mode_type != "std_srvs/SetBool":
            return self._call(service, int(on))
        try:
            rospy.wait_for_service(service, timeout=self.config.service_timeout)
            resp = rospy.ServiceProxy(service, SetBool)(data=on)
            return bool(resp.success), resp.message
        except (rospy.ROSException, rospy.ServiceException, OSError) as exc:
            return False, str(exc)

    def _call(self, service: str, mode: int) -> tuple[bool, str]:
        try:
            rospy.wait_for_service(service, timeout=self.config.service_timeout)
            resp = rospy.ServiceProxy(service, messages.changeArmCtrlMode)(control_mode=mode)
            return bool(resp.result), resp.message
        except (rospy.ROSException, rospy.ServiceException, OSError) as exc:
            return False, str(exc)
