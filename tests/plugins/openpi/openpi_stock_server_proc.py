"""Run openpi's own ``WebsocketPolicyServer`` (PyPI ``openpi-server``) around a test policy.

Used as a script by the tests:
``python openpi_stock_server_proc.py --port N [--metadata JSON] [--policy counting|goal] [--policy-args JSON]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from openpi_client import base_policy  # noqa: E402
from openpi_server import WebsocketPolicyServer  # noqa: E402
from openpi_test_policies import CountingPolicy, GoalSeekingPolicy  # noqa: E402


class StockCountingPolicy(CountingPolicy, base_policy.BasePolicy):
    """The counting test policy, typed as openpi's own BasePolicy."""


class StockGoalSeekingPolicy(GoalSeekingPolicy, base_policy.BasePolicy):
    """The debug/reach goal-seeking test policy, typed as openpi's own BasePolicy."""


POLICIES = {"counting": StockCountingPolicy, "goal": StockGoalSeekingPolicy}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metadata", default="{}")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="counting")
    parser.add_argument("--policy-args", default="{}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    policy = POLICIES[args.policy](**json.loads(args.policy_args))
    server = WebsocketPolicyServer(policy, host="127.0.0.1", port=args.port, metadata=json.loads(args.metadata))
    server.serve_forever()


if __name__ == "__main__":
    main()
