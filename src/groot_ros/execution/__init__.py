"""ROS-free execution core of the policy node: chunks -> control-rate commands -> safety envelope.

Pure numpy so it can be tested and benchmarked in simulated time; the node wires it to ROS.
"""

from groot_ros.execution.config import (ExecutionConfig, ExecutionConfigError, ExecutionSettings, SafetyConfig,
                                        WatchdogConfig, load_execution_settings)
from groot_ros.execution.control_step import ControlStep, Tick
from groot_ros.execution.resample import Trajectory, chunk_trajectory
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.execution.schedule import ChunkScheduler, SubmitResult, TickInfo
from groot_ros.execution.state_machine import StateMachine, Transition
from groot_ros.execution.watchdog import Health, Watchdog

__all__ = [
    "ChunkScheduler", "ExecutionConfig", "ExecutionConfigError", "ControlStep", "ExecutionSettings",
    "Health", "SafetyConfig", "SafetyEnvelope", "StateMachine", "SubmitResult", "Tick", "TickInfo", "Trajectory",
    "Transition", "Watchdog", "WatchdogConfig", "chunk_trajectory", "load_execution_settings",
]
