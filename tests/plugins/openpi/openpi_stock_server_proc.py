"""Run openpi's own ``WebsocketPolicyServer`` (PyPI ``openpi-server``) around a test policy.

Used as a script by the tests: ``python openpi_stock_server_proc.py --port N [--metadata JSON]``.
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
from openpi_test_policies import CountingPolicy  # noqa: E402


class StockCountingPolicy(base_policy.BasePolicy, CountingPolicy):
    """The test policy, typed as openpi's own BasePolicy."""

    def __init__(self) -> None:
        CountingPolicy.__init__(self)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metadata", default="{}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = WebsocketPolicyServer(StockCountingPolicy(), host="127.0.0.1", port=args.port,
                                   metadata=json.loads(args.metadata))
    server.serve_forever()


if __name__ == "__main__":
    main()
