"""A GR00T server in its own process for the client/server tests.

Prints `READY <port>` once bound. The handler's replies let tests see who answered what:
each action row is filled with the row's `state[..., -1, 0]` value, and `info["served_by"]`
lists this server's tag once per row.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import numpy as np

from arena_gr00t import Gr00tServer, ModalityConfig, is_flat

HORIZON, ACTION_DIM = 4, 3


class TaggedHandler:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.resets = 0

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return {
            "video": ModalityConfig([0], ["ego"]),
            "state": ModalityConfig([0], ["arm"]),
            "action": ModalityConfig(
                list(range(HORIZON)),
                ["arm"],
                action_configs=[{"rep": "RELATIVE", "type": "NON_EEF", "format": "DEFAULT", "state_key": "arm"}],
            ),
            "language": ModalityConfig([0], ["annotation.human.task_description"]),
        }

    def get_action(self, observation: dict[str, Any], options: dict[str, Any] | None = None):
        options = options or {}
        if "sleep_s" in options:
            time.sleep(float(options["sleep_s"]))
        if "raise" in options:
            raise RuntimeError(options["raise"])
        flat = is_flat(observation)
        state = observation["state.arm"] if flat else observation["state"]["arm"]
        lang_key = "annotation.human.task_description"
        language = observation[lang_key] if flat else [x[0] for x in observation["language"][lang_key]]
        rows = state.shape[0]
        arm = np.repeat(state[:, -1:, :1], HORIZON, axis=1).repeat(ACTION_DIM, axis=2).astype(np.float32)
        action = {"action.arm": arm} if flat else {"arm": arm}
        info = {"served_by": [self.tag] * rows, "language": list(language), "rows": rows}
        return action, info

    def reset(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        self.resets += 1
        return {"tag": self.tag, "resets": self.resets, "options": options}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tag", default="server")
    p.add_argument("--token", default=None)
    p.add_argument("--allow-kill", action="store_true")
    p.add_argument("--max-message-bytes", type=int, default=64 * 2**20)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=f"[{args.tag}] %(levelname)s %(message)s")
    handler = TaggedHandler(args.tag)
    server = Gr00tServer(
        handler,
        port=args.port,
        api_token=args.token,
        allow_kill=args.allow_kill,
        max_message_bytes=args.max_message_bytes,
        poll_interval_s=0.05,
    )
    server.register_endpoint("echo", lambda **data: {"echo": data, "tag": args.tag})
    print(f"READY {server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
