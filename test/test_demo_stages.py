"""The demo's stage cache: keyed on settings and upstream content, so any upstream change redoes what follows."""

from __future__ import annotations

from groot_ros.demo.pipeline import Stages


def pipeline(root, runs: list, a_setting: int = 1):
    """a -> b -> c, each writing a file derived from its input; `runs` records which stages ran."""
    stages = Stages(root)

    def step(name, text):
        def fn(out):
            runs.append(name)
            (out / "data.txt").write_text(text())
        return fn

    a = stages.run("a", {"setting": a_setting}, step("a", lambda: f"a{a_setting}"))
    b = stages.run("b", {}, step("b", lambda: (a / "data.txt").read_text() + "b"), upstream=(a,))
    stages.run("c", {}, step("c", lambda: (b / "data.txt").read_text() + "c"), upstream=(b,))


def test_nothing_changed_nothing_reruns(tmp_path, capsys):
    runs: list = []
    pipeline(tmp_path, runs)
    pipeline(tmp_path, runs)
    assert runs == ["a", "b", "c"]
    assert capsys.readouterr().out.count(": cached (") == 3


def test_a_setting_change_reruns_everything_downstream(tmp_path, capsys):
    runs: list = []
    pipeline(tmp_path, runs)
    runs.clear()
    capsys.readouterr()
    pipeline(tmp_path, runs, a_setting=2)
    assert runs == ["a", "b", "c"]
    assert (tmp_path / "c" / "data.txt").read_text() == "a2bc"
    said = capsys.readouterr().out
    assert "a: running (changed since the last run: setting)" in said
    assert "b: running (changed since the last run: upstream)" in said


def test_a_deleted_stage_reruns_itself_and_what_follows_only(tmp_path):
    import shutil

    runs: list = []
    pipeline(tmp_path, runs)
    shutil.rmtree(tmp_path / "b")
    runs.clear()
    pipeline(tmp_path, runs)
    assert runs == ["b", "c"]


def test_edited_output_of_an_upstream_stage_is_seen(tmp_path, capsys):
    runs: list = []
    pipeline(tmp_path, runs)
    (tmp_path / "a" / "data.txt").write_text("edited by hand")
    runs.clear()
    pipeline(tmp_path, runs)
    assert runs == ["a", "b", "c"]
    assert "a: running (its folder's content changed after it was stamped)" in capsys.readouterr().out  # a's stamp no longer matches its content: redone, and so is everything after


def test_logs_written_after_the_stamp_do_not_invalidate_a_stage(tmp_path):
    runs: list = []
    pipeline(tmp_path, runs)
    (tmp_path / "c" / "roslog").mkdir()
    (tmp_path / "c" / "roslog" / "rosout.log").write_text("late")
    (tmp_path / "c" / "launch.log").write_text("late")
    runs.clear()
    pipeline(tmp_path, runs)
    assert runs == []
