"""The node's parameters: read once, every problem listed, paths typed by the user resolved where they stood."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from groot_ros.ros.params import ParamError, parse_params

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def test_relative_paths_resolve_against_the_launch_directory(tmp_path):
    ckpt = tmp_path / "outputs" / "run" / "pretrained_model"
    ckpt.mkdir(parents=True)
    params = parse_params({"launch_dir": str(tmp_path), "checkpoint": "outputs/run/pretrained_model",
                           "observation_log_dir": "logs/obs", "layout": "my_layouts/l.yaml", "topics": "real"})
    assert params.checkpoint == ckpt
    assert params.observation_log_dir == tmp_path / "logs" / "obs"
    assert params.layout == str(tmp_path / "my_layouts" / "l.yaml")
    assert params.topics == "real"  # a name, not a path


def test_pwd_is_the_fallback_launch_directory(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    monkeypatch.setenv("PWD", str(tmp_path))
    assert parse_params({"checkpoint": "ckpt"}).checkpoint == tmp_path / "ckpt"


def test_every_problem_is_listed_with_the_path_as_given_and_resolved(tmp_path):
    with pytest.raises(ParamError) as err:
        parse_params({"launch_dir": str(tmp_path), "checkpoint": "nope/pretrained_model", "backend": "ros2",
                      "device": "tpu", "home_pose_deg": [0, 10, 20], "base_config": "base/config.json"})
    text = str(err.value)
    assert f"'nope/pretrained_model' does not exist (resolved against {tmp_path}: {tmp_path / 'nope/pretrained_model'})" in text
    assert "base/config.json" in text and "ros2" in text and "tpu" in text
    assert "~home_pose_deg has 3 values; it needs 14" in text


def test_checkpoint_is_required():
    with pytest.raises(ParamError, match="~checkpoint .* or ~policy_server .* is required"):
        parse_params({})


def test_a_policy_server_replaces_the_checkpoint(tmp_path):
    params = parse_params({"policy_server": "ws://gpu-pc:8000"})
    assert params.policy_server == "ws://gpu-pc:8000" and params.checkpoint == Path("")
    with pytest.raises(ParamError) as err:
        parse_params({"policy_server": "gpu-pc:8000", "checkpoint": str(tmp_path)})
    assert "'gpu-pc:8000' is not a ws://host:port address" in str(err.value)
    assert "~checkpoint and ~policy_server both given" in str(err.value)


def test_seed_and_defaults(tmp_path):
    params = parse_params({"checkpoint": str(tmp_path), "seed": -1, "home_pose_deg": [0.0] * 14})
    assert params.seed is None and len(params.home_pose_deg) == 14 and params.backend == "topics"
    assert parse_params({"checkpoint": str(tmp_path), "seed": 3}).seed == 3


def _args(name: str) -> dict[str, str | None]:
    return {a.get("name"): a.get("default") for a in ET.parse(LAUNCH / name).getroot().findall("arg")}


@pytest.mark.parametrize("wrapper, fixed", [("sim_depalletize.launch", set()),
                                            ("real_robot.launch", {"start_paused"})])
def test_every_policy_launch_arg_is_reachable_from_the_wrappers(wrapper, fixed):
    policy = set(_args("policy.launch"))
    assert policy - set(_args(wrapper)) == fixed
    include = [i for i in ET.parse(LAUNCH / wrapper).getroot().iter("include") if "policy.launch" in i.get("file")]
    assert include and include[0].get("pass_all_args") == "true"


def test_policy_launch_passes_the_launch_directory():
    node = ET.parse(LAUNCH / "policy.launch").getroot().find("node")
    assert any(p.get("name") == "launch_dir" and "PWD" in p.get("value") for p in node.findall("param"))


def test_a_relaunch_does_not_inherit_private_params():
    """roslaunch leaves a node's ~params on the master: without clear_params an earlier launch's execution
    overrides (an unreachable start pose, say) would apply to the next one."""
    node = ET.parse(LAUNCH / "policy.launch").getroot().find("node")
    assert node.get("clear_params") == "true"
    sim = [n for n in ET.parse(LAUNCH / "sim_depalletize.launch").getroot().iter("node")
           if n.get("type") == "kuavo_loopback_sim"]
    assert sim and sim[0].get("clear_params") == "true"
