"""Execution settings: the shipped YAML, strict keys, and validation that lists every problem."""

import pytest

from groot_ros.execution.config import (ExecutionConfig, ExecutionConfigError, ExecutionSettings, SafetyConfig,
                                        from_dict, load_execution_settings)
from groot_ros.execution.schedule import ChunkScheduler
from groot_ros.core.layout import load_layout


def test_shipped_yaml_documents_the_code_defaults():
    assert load_execution_settings() == ExecutionSettings()


def test_unknown_keys_are_errors():
    with pytest.raises(ExecutionConfigError, match="max_joint_velocty"):
        from_dict(SafetyConfig, {"max_joint_velocty": 2.0})
    with pytest.raises(ExecutionConfigError, match="unknown execution config sections"):
        ExecutionSettings.from_dict({"safty": {}})


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ExecutionConfigError) as err:
        from_dict(ExecutionConfig, {"mode": "fast", "blend": "cubic", "stride": 0, "lowpass_alpha": 1.5,
                                    "control_rate": -1, "chunk_start": 4, "chunk_end": 2})
    text = str(err.value)
    for key in ("mode", "blend", "stride", "lowpass_alpha", "control_rate", "chunk_end"):
        assert key in text
    with pytest.raises(ExecutionConfigError, match="max_joint_velocity"):
        SafetyConfig(max_joint_velocity=float("nan"))


def test_window_must_fit_the_layout_chunk():
    layout = load_layout("depalletize", "4_pro", "sim")
    with pytest.raises(ExecutionConfigError, match="does not fit"):
        ChunkScheduler(layout, ExecutionConfig(chunk_end=20))
    with pytest.raises(ExecutionConfigError, match="sync_execute_steps 8 exceeds the 4 rows"):
        ChunkScheduler(layout, ExecutionConfig(mode="sync", chunk_start=0, chunk_end=16, stride=4))
    assert list(ExecutionConfig(chunk_start=2, chunk_end=10, stride=3).window_rows(16)) == [2, 5, 8]


def test_overrides_replace_single_keys_and_typos_are_still_errors():
    settings = load_execution_settings(overrides={"safety": {"max_joint_velocity": 0.5}, "watchdog": {"auto_resume": True}})
    base = load_execution_settings()
    assert settings.safety.max_joint_velocity == 0.5 and settings.watchdog.auto_resume is True
    assert settings.safety.torso_max_z_rate == base.safety.torso_max_z_rate
    assert settings.execution == base.execution
    with pytest.raises(ExecutionConfigError, match="unknown keys"):
        load_execution_settings(overrides={"safety": {"max_joint_speed": 0.5}})
