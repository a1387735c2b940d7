"""arena-vlaeval: evaluate any model served by vla-eval, and serve any arena policy to vla-eval."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
