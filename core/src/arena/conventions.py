"""What action and state numbers mean, checked between an env and a model server.

A checkpoint that scores 90% natively can score 0% through a harness because the two sides
disagree on a convention: the gripper's sign, the rotation format, a delta read as an
absolute target. An env declares its conventions on the contract
(:attr:`arena.contract.ActionGroup.convention`, :attr:`arena.contract.EnvSpec.state_conventions`)
in vla-eval's vocabulary (its ``DimSpec`` formats); a protocol family compares them with
what a server declares and refuses a mismatch, naming the key, both conventions and the
conversion that reconciles them when there is one (:data:`CONVERSIONS`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["VOCABULARY", "CONVERSIONS", "INVERSES", "conversion_between", "convert", "mismatch"]

#: vla-eval's formats (vla_eval.specs), plus the quaternion order it leaves implicit
VOCABULARY = frozenset(
    {
        "delta_xyz",
        "absolute_xyz",
        "euler_xyz",
        "axis_angle",
        "quaternion_xyzw",
        "quaternion_wxyz",
        "rot6d_interleaved",
        "binary_close_positive",
        "binary_close_negative",
        "continuous_01",
        "binary_close_01",
        "joint_positions",
        "rgb_hwc_uint8",
        "language",
        "raw",
        # arena's: a gripper in [0, 1] with 1 = open (OpenVLA's RLDS-trained checkpoints)
        "open_01",
    }
)

#: conversion name -> (from, to, function on the group's columns (..., D)); each applies to a
#: server's values to give the env's (a mapping names it per action group)
CONVERSIONS: dict[str, tuple[frozenset[tuple[str, str]], Callable[[np.ndarray], np.ndarray]]] = {
    "flip_sign": (
        frozenset(
            {("binary_close_negative", "binary_close_positive"), ("binary_close_positive", "binary_close_negative")}
        ),
        lambda a: -a,
    ),
    "xyzw_to_wxyz": (frozenset({("quaternion_xyzw", "quaternion_wxyz")}), lambda a: a[..., [3, 0, 1, 2]]),
    "wxyz_to_xyzw": (frozenset({("quaternion_wxyz", "quaternion_xyzw")}), lambda a: a[..., [1, 2, 3, 0]]),
    "01_to_signed": (
        frozenset({("continuous_01", "binary_close_positive"), ("binary_close_01", "binary_close_positive")}),
        lambda a: 2.0 * a - 1.0,
    ),
    "signed_to_01": (
        frozenset({("binary_close_positive", "continuous_01"), ("binary_close_positive", "binary_close_01")}),
        lambda a: (a + 1.0) / 2.0,
    ),
    "open_01_to_signed": (frozenset({("open_01", "binary_close_positive")}), lambda a: 1.0 - 2.0 * a),
    "signed_to_open_01": (frozenset({("binary_close_positive", "open_01")}), lambda a: (1.0 - a) / 2.0),
}

#: conversion -> the one that undoes it (a served policy answers in the server's convention)
INVERSES: dict[str, str] = {
    "flip_sign": "flip_sign",
    "xyzw_to_wxyz": "wxyz_to_xyzw",
    "wxyz_to_xyzw": "xyzw_to_wxyz",
    "01_to_signed": "signed_to_01",
    "signed_to_01": "01_to_signed",
    "open_01_to_signed": "signed_to_open_01",
    "signed_to_open_01": "open_01_to_signed",
}


def conversion_between(source: str, target: str) -> str | None:
    """The conversion that turns ``source`` values into ``target`` ones, if there is one."""
    for name, (pairs, _) in CONVERSIONS.items():
        if (source, target) in pairs:
            return name
    return None


def convert(name: str, values: np.ndarray) -> np.ndarray:
    return np.asarray(CONVERSIONS[name][1](np.asarray(values, np.float32)), np.float32)


def mismatch(key: str, server: str, env: str, env_name: str, option: Callable[[str], str]) -> str:
    """The problem line for ``server`` vs ``env`` conventions at ``key``; ``option(conversion)`` says how to apply one."""
    name = conversion_between(server, env)
    fix = (
        f"convert with {option(name)}" if name else "no conversion between them is known; use a matching server or env"
    )
    return f"{key}: the server declares {server}, env {env_name} expects {env}; {fix}"
