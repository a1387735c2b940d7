"""`arena-gr00t serve` whose modality config also asks for a state key no env has (`velocity`).

Stands for a server whose model was trained with an input the client's mapping cannot feed.
"""

from __future__ import annotations

import sys

import arena_gr00t.serve as serve
from arena_gr00t.cli import main
from arena_gr00t.wire.codec import ModalityConfig

_derive = serve.modality_config_for


def _with_extra_key(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    config = _derive(*args, **kwargs)
    state = config["state"]
    config["state"] = ModalityConfig(state.delta_indices, [*state.modality_keys, "velocity"])
    return config


serve.modality_config_for = _with_extra_key

if __name__ == "__main__":
    sys.exit(main())
