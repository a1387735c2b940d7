"""openpi's own ``WebsocketPolicyServer`` (PyPI ``openpi-server``) around a policy that records what it reads.

``python libero_openpi_server_proc.py --port N --record DIR``: each observation is written to
``DIR/obs-<i>.npz`` (arrays as they arrived, the prompt as a 0-d string array); the reply is a
(10, 7) chunk of no-ops with the gripper open, as pi05_libero's chunks are shaped.
"""

from __future__ import annotations

import argparse
import logging
import pathlib

import numpy as np
from openpi_client import base_policy
from openpi_server import WebsocketPolicyServer


class RecordingPolicy(base_policy.BasePolicy):
    def __init__(self, record: pathlib.Path) -> None:
        self.record = record
        self.count = 0

    def infer(self, obs: dict) -> dict:
        arrays = {k.replace("/", "__"): np.asarray(v) for k, v in obs.items()}
        np.savez(self.record / f"obs-{self.count}.npz", **arrays)
        self.count += 1
        actions = np.zeros((10, 7), np.float32)
        actions[:, 6] = -1.0
        return {"actions": actions}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=pathlib.Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    WebsocketPolicyServer(RecordingPolicy(args.record), host="127.0.0.1", port=args.port).serve_forever()


if __name__ == "__main__":
    main()
