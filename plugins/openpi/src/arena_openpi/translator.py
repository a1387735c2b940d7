"""openpi's side of the key translator: the served layout check and result-map replies.

The mapping resolution, the image pipeline and the observation maps are the kit's
(:class:`arena.remote.translate.KeyTranslator`). Against the reference server (whose
metadata states its layout) :meth:`Translator.restrict` checks each key the server reads
and drops keys it does not read, so cameras nobody reads are never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arena.errors import PolicyError
from arena.remote.translate import KeyTranslator, action_text, shape_text
from arena_openpi.layout import ServedLayout

__all__ = ["Translator", "shape_text"]


class Translator(KeyTranslator):
    """Encode observation rows and decode openpi action chunks for one mapping on one env spec."""

    label = "openpi"

    # ------------------------------------------------------------------ preflight

    def restrict(self, layout: ServedLayout) -> list[str]:
        """Check the mapping against a reference server's layout; send only the keys it reads."""
        problems: list[str] = []
        served = f"server ({layout.policy} on {layout.env})"
        for key, want in layout.entries.items():
            have = self.keys.get(key)
            if have is None:
                expected = f"{want.kind} {shape_text(want.shape)}" if want.kind != "prompt" else "the instruction"
                problems.append(
                    f"{key}: {served} reads it ({expected}), the mapping {self.mapping.name or self.mapping.source} "
                    "does not produce it"
                )
            elif have.kind != want.kind:
                problems.append(f"{key}: {served} expects {want.kind}, the mapping sends {have.kind} ({have.source})")
            elif want.kind != "prompt" and have.shape != want.shape:
                problems.append(
                    f"{key}: {served} expects shape {shape_text(want.shape)}, the mapping sends "
                    f"{shape_text(have.shape)} ({have.source})"
                )
            elif want.kind == "state" and want.groups:
                entry = next(e for e in self.state if e.key == key)
                if tuple(entry.groups or ()) != tuple(want.groups):
                    problems.append(
                        f"{key}: {served} splits it into groups {list(want.groups)}, the mapping concatenates "
                        f"{list(entry.groups or entry.joints or ())}"
                    )
        if tuple(layout.action_groups) != tuple(self.action_groups):
            problems.append(
                f"{self.action_key}: {served} returns columns of action groups {list(layout.action_groups)}, "
                f"the mapping expects {list(self.action_groups)}"
            )
        self.not_read = [k for k in self.keys if k not in layout.entries]
        self.images = [e for e in self.images if e.key in layout.entries]
        self.state = [e for e in self.state if e.key in layout.entries]
        if self.prompt_key not in layout.entries:
            self.prompt_key = None
        self.keys = {k: v for k, v in self.keys.items() if k in layout.entries}
        return problems

    def reply_actions(self, result: Mapping[str, Any]) -> np.ndarray:
        """The (H, A) chunk of one result map; PolicyError naming the key and shapes otherwise."""
        if self.action_key not in result:
            raise PolicyError(f"openpi: reply has no {self.action_key!r} key (keys: {sorted(map(str, result))})")
        value = result[self.action_key]
        if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype.kind not in "fiu":
            got = f"{value.dtype} {shape_text(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise PolicyError(f"openpi: reply {self.action_key!r}: expected a numeric (H, A) array, received {got}")
        if value.shape[1] != self.action_width:
            raise PolicyError(
                f"openpi: reply {self.action_key!r}: expected shape (H, {self.action_width}) for action groups "
                f"{action_text(self.spec, self.action_groups)}, received {shape_text(value.shape)}"
            )
        return value

    def decode(self, results: Sequence[Mapping[str, Any]], horizon: int) -> np.ndarray:
        """(M, horizon, A) in the env's action order from M result maps."""
        out = np.empty((len(results), horizon, self.spec.action_dim), np.float32)
        for i, result in enumerate(results):
            actions = self.reply_actions(result)
            if actions.shape[0] != horizon:
                raise PolicyError(
                    f"openpi: reply {self.action_key!r}: expected shape {shape_text((horizon, self.action_width))} "
                    f"(the chunk length established at preflight), received {shape_text(actions.shape)}"
                )
            out[i] = actions[:, self.action_columns]
        return out
