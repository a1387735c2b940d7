"""A model server written on vla-eval's own ``PredictModelServer``, hosting Meta-World's scripted expert.

Run as ``python vlaeval_expert_server.py PORT [--chunk-size K] [--gripper negative] [--drop-after N]``.
It reads what a vla-eval benchmark sends (``states``: the 39-d Meta-World vector,
``task_description``) and answers ``{"actions": (4,)}``, or a (K, 4) chunk of the same action
repeated when ``--chunk-size K`` (vla-eval then answers one action per observation from its
buffer). ``--gripper negative`` declares and answers the opposite gripper sign;
``--drop-after N`` ends the process after N observations (a server crash mid-episode).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib.resources import files

import numpy as np
from vla_eval.model_servers.predict import PredictModelServer
from vla_eval.model_servers.serve import serve
from vla_eval.specs import GRIPPER_CLOSE_NEG, GRIPPER_CLOSE_POS, LANGUAGE, POSITION_DELTA, RAW, DimSpec


class MetaWorldExpertServer(PredictModelServer):
    def __init__(self, chunk_size: int | None, negative: bool, drop_after: int | None) -> None:
        super().__init__(chunk_size=chunk_size)
        from arena_metaworld.expert import expert_class

        text = json.loads(files("arena_metaworld").joinpath("instructions.json").read_text())
        self.experts = {i: expert_class(t)() for t, i in text.items() if not t.startswith("_") and expert_class(t)}
        self.negative = negative
        self.drop_after = drop_after
        self.seen = 0

    def predict(self, obs: dict, ctx) -> dict:  # noqa: ANN001 - vla-eval's SessionContext
        self.seen += 1
        if self.drop_after is not None and self.seen > self.drop_after:
            os._exit(0)  # the server dies mid-episode
        state = np.asarray(obs["states"], np.float64)
        action = np.clip(self.experts[obs["task_description"]].get_action(state), -1.0, 1.0).astype(np.float32)
        if self.negative:
            action[3] = -action[3]
        if self.chunk_size or getattr(self, "reply_chunk", None):
            return {"actions": np.tile(action, (self.chunk_size or self.reply_chunk, 1))}
        return {"actions": action}

    def get_action_spec(self) -> dict[str, DimSpec]:
        return {"position": POSITION_DELTA, "gripper": GRIPPER_CLOSE_NEG if self.negative else GRIPPER_CLOSE_POS}

    def get_observation_spec(self) -> dict[str, DimSpec]:
        return {"states": RAW, "language": LANGUAGE}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--gripper", choices=["positive", "negative"], default="positive")
    ap.add_argument("--drop-after", type=int, default=None)
    ap.add_argument("--reply-chunk", type=int, default=None, help="answer (K, 4) chunks as they are (no chunk_size)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = MetaWorldExpertServer(args.chunk_size, args.gripper == "negative", args.drop_after)
    server.reply_chunk = args.reply_chunk
    serve(server, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    sys.exit(main())
