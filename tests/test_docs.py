"""The docs tell the truth: every relative link and file reference resolves inside the repository,
and every command README.md's "Everyday use" block shows runs after README's install."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("plugins/*/README.md"), *ROOT.glob("examples/*/README.md")]
)

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: a backticked path-like reference: no spaces or placeholders, a known file kind or a folder
FILE_REF = re.compile(r"`((?:\.\./|\./)?[\w.-]+(?:/[\w.-]+)+/?|[\w.-]+\.md)`")
FILE_KINDS = (".md", ".py", ".toml", ".sh", ".json", ".png", ".txt", ".yaml", ".yml")
#: files of upstream projects that the docs cite (in the installed package or the upstream repository)
UPSTREAM = {"metaworld/sawyer_xyz_env.py", "scripts/serve_policy.py", "vla-scripts/deploy.py"}
#: where a reference relative to a package or distribution is looked up
BASES = [ROOT, ROOT / "core", ROOT / "core" / "src", *ROOT.glob("plugins/*"), *ROOT.glob("plugins/*/src")]
BASES += list(ROOT.glob("examples/*"))


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def _outside_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    bad = []
    for target in LINK.findall(_outside_code(doc.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists() or ROOT not in resolved.parents and resolved != ROOT:
            bad.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            bad.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert bad == [], f"{doc.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_references_resolve_inside_the_repository(doc: Path) -> None:
    bad = []
    for ref in FILE_REF.findall(doc.read_text()):
        if ref.startswith("../shared"):
            bad.append(f"{ref}: points outside the repository (users have only the repository)")
            continue
        if not (ref.endswith("/") or ref.endswith(FILE_KINDS)) or ref.startswith(("runs/", "RUN_DIR")):
            continue  # module paths (arena.x), run outputs and placeholders
        if ref in UPSTREAM:
            continue
        if not any(c.exists() for c in [doc.parent / ref, *(base / ref for base in BASES)]):
            bad.append(f"{ref}: not found next to the document or from the repository root")
    assert bad == [], f"{doc.relative_to(ROOT)}: " + "; ".join(bad)


def test_no_module_docstring_points_outside_the_repository() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("core/src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]
        if "shared/docs" in p.read_text()
    ]
    assert offenders == []


# -- README: the install and the everyday commands ----------------------------------------------------


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _install_line() -> str:
    return next(line for line in _blocks(_readme())[0].splitlines() if "pip install" in line)


def _everyday() -> list[str]:
    section = _readme().split("## Everyday use", 1)[1]
    return [line for line in _blocks(section)[0].splitlines() if line.strip()]


#: what a command needs beyond arena-core, and how README's install provides it
NEEDS = [
    (re.compile(r"--policy (gr00t)\b"), "./plugins/gr00t"),
    (re.compile(r"--policy (openpi)\b"), "./plugins/openpi"),
    (re.compile(r"--policy expert\b|--env metaworld/"), "./plugins/metaworld"),
    (re.compile(r"--policy libero-expert\b|--env libero/"), "./plugins/libero"),
    (re.compile(r"--videos\b"), "video"),
    (re.compile(r"^arena report\b"), "report"),
    (re.compile(r"--tracker tensorboard\b"), "tensorboard"),
]


def _installed_by(install: str, need: str) -> bool:
    if need.startswith("./"):
        return need in install
    extras = re.findall(r"\./core\[([\w,]+)\]", install)
    return any(need in e.split(",") for e in extras)


def test_everyday_commands_need_only_the_readme_install_or_say_what_to_add() -> None:
    install = _install_line()
    assert "./core" in install
    missing = []
    for line in _everyday():
        command, _, comment = line.partition("#")
        for pattern, need in NEEDS:
            if pattern.search(command) and not _installed_by(install, need):
                if "pip install" not in comment or need.strip("./") not in comment:
                    missing.append(f"{command.strip()!r} needs {need} (not in README's install, not said on the line)")
    assert missing == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _arena() -> str:
    exe = Path(sys.executable).with_name("arena")
    return str(exe) if exe.exists() else "arena"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_everyday_command_runs(tmp_path: Path) -> None:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), PYTHONUNBUFFERED="1")
    env.pop("ARENA_PLUGINS", None)
    for line in _everyday():
        command = line.partition("#")[0].strip()
        argv = shlex.split(command)
        assert argv[0] == "arena", line
        remote = "--host" in argv
        if remote:  # only loopback here: point it at a port where nothing listens
            argv[argv.index("--host") + 1] = f"127.0.0.1:{_free_port()}"
        if "--tracker" in argv and argv[argv.index("--tracker") + 1] == "tensorboard":
            pytest.importorskip("tensorboard")
        out = subprocess.run([_arena(), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        text = out.stdout + out.stderr
        assert "Traceback" not in text, f"{command}:\n{text}"
        if remote:
            assert out.returncode != 0, f"{command} passed without a server:\n{text}"
            assert "127.0.0.1" in text and re.search(r"unreachable|cannot connect|refused|no answer", text), text
        else:
            assert out.returncode == 0, f"{command} exited {out.returncode}:\n{text}"
    assert (tmp_path / "runs" / "pick-seed2" / "report.html").exists()
    assert list((tmp_path / "runs" / "pick-seed2" / "videos").glob("*.mp4"))
