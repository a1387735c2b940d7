"""The wire layers of every protocol family import nothing from arena but the kit's dependency-free modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the kit modules a wire layer may use; each of them imports no other arena module
FREE = {
    "arena.futures",
    "arena.remote.errors",
    "arena.remote.hosts",
    "arena.remote.retry",
    "arena.remote.fanout",
    "arena.remote.msgpack_limits",
}


def _arena_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            out.update(n for n in names if n.split(".")[0] == "arena")
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "arena")
    return out


WIRE = sorted(ROOT.glob("plugins/*/src/*/wire/*.py"))


def _free(name: str) -> bool:
    # "arena.remote" itself appears for `from arena.remote import hosts`; the name imported is checked too
    return name == "arena.remote" or any(name == m or name.startswith(m + ".") for m in FREE)


@pytest.mark.parametrize("path", WIRE, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_wire_module_imports_only_the_free_kit_modules(path: Path) -> None:
    bad = sorted(n for n in _arena_imports(path) if not _free(n))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("module", sorted(FREE))
def test_the_free_kit_modules_import_only_each_other(module: str) -> None:
    path = ROOT / "core/src" / (module.replace(".", "/") + ".py")
    others = {n for n in _arena_imports(path) if not _free(n)}
    assert not others, f"{module} imports {sorted(others)}"


def test_every_protocol_family_has_a_wire_package() -> None:
    families = {p.parent.parent.name for p in WIRE}
    assert {"arena_gr00t", "arena_openpi", "arena_openvla", "arena_vlaeval"} <= families
