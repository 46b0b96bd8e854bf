"""DAgger verbs: dagger-keys (the terminal's keys -> the policy node's services)."""

from __future__ import annotations

import argparse


def cmd_dagger_keys(args: argparse.Namespace) -> int:
    from groot_ros.ros.dagger_keys import run

    return run(args.node)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dagger-keys", help="drive a DAgger session from the keyboard: takeover, save, discard, reset, "
                                           "stop (it only calls the policy node's services)")
    p.add_argument("--node", default="/groot_policy", help="the policy node's name (default /groot_policy)")
    p.set_defaults(func=cmd_dagger_keys)
