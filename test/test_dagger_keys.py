"""dagger-keys maps keys to the policy node's services and nothing else (ros/dagger_keys.py), tested without a
master through its injected call; the node's side of each service is tested with the node."""

import io

from std_srvs.srv import SetBool, Trigger

from groot_ros.ros.dagger_keys import KEYS, Session, keys, usage


def test_keys_call_the_nodes_services_and_takeover_toggles_only_when_the_node_agrees():
    calls = []
    answers = iter([(True, "operator in charge"), (False, "not running"), (True, "saved episode 3"),
                    (True, "policy in charge")])

    def call(name, srv_type, data):
        calls.append((name, srv_type, data))
        return next(answers)

    session = Session("/groot_policy/", call)
    assert session.press("t") == "takeover: ok: operator in charge" and session.taken_over
    assert session.press("t") == "takeover: REFUSED: not running" and session.taken_over  # still the operator's
    assert session.press("e") == "episode: ok: saved episode 3"
    session.press("t")
    assert not session.taken_over
    assert calls == [("/groot_policy/takeover", SetBool, True), ("/groot_policy/takeover", SetBool, False),
                     ("/groot_policy/episode", Trigger, None), ("/groot_policy/takeover", SetBool, False)]
    assert session.press("z").startswith("'z': not a key") and len(calls) == 4


def test_piped_input_gives_one_key_per_line_and_the_usage_names_every_key():
    assert list(keys(io.StringIO("t\n\n  e please\nq\n"))) == ["t", "e", "q"]
    text = usage("/groot_policy")
    assert all(f"  {k}  " in text for k in KEYS) and "q  quit" in text
