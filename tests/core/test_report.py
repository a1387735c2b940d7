"""``arena report``: a self-contained page whose charts and videos really render in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arena
from arena.cli import main
from arena.contract import ActionChunk, Observation
from arena.plugins import load_plugins
from arena.policy import Policy, PolicyDescription
from arena.report import REPORT_FILE, write_report

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT_DOC = ROOT / "docs" / "report-screenshot.png"


class Sometimes(Policy):
    """Heads for the goal in about 70% of episodes (chosen by the episode seed), holds still otherwise."""

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        self.active = getattr(self, "active", np.zeros(self.num_envs, bool))
        for k, i in enumerate(env_ids):
            self.active[i] = np.random.default_rng(None if seeds is None else seeds[k]).random() < 0.7

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        ids = np.flatnonzero(env_mask)
        delta = np.asarray(observation.state["goal"])[ids] - np.asarray(observation.state["position"])[ids]
        action = np.clip(delta / 0.1, -1, 1) * self.active[ids, None]
        return ActionChunk(action.astype(np.float32)[:, None, :], observation.env_ids[ids])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(family="sometimes", action_horizon=1, action_dim=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished debug/suite run with mixed outcomes and failure reasons, two videos per task."""
    path = tmp_path_factory.mktemp("report") / "run"
    arena.evaluate(
        Sometimes,
        "debug/suite",
        episodes=10,
        num_envs=2,
        videos=2,
        seed=1,
        output=path,
        env_config={"image_size": 64, "crash_episodes": [5]},
        plugins=load_plugins(only=()),  # built-ins only (module scope: the autouse ARENA_PLUGINS is not set yet)
    )
    write_report(path)
    return path


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def test_report_is_self_contained(run: Path) -> None:
    page = (run / REPORT_FILE).read_text()
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:") for s in sources), [
        s[:40] for s in sources if not s.startswith("data:")
    ]
    assert page.count("<video") == 4 and page.count('src="data:video/mp4;base64,') == 4
    assert page.count('src="data:image/png;base64,') == 2
    overall = _summary(run)["overall"]
    assert f"{100 * overall['success_rate']:.1f}%" in page
    assert "env_error: RuntimeError: debug env crashed on purpose" in page  # failure reasons
    assert '"env": "debug/suite"' in page and "arena-core" in page  # config and versions


def test_cli_writes_the_report(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out}"
    assert out.stat().st_size > 10_000


def test_missing_run_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_interrupted_run_is_reported_as_incomplete(run: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(run / "config.json", cut / "config.json")
    lines = (run / "episodes.jsonl").read_text().splitlines(keepends=True)
    (cut / "episodes.jsonl").write_text("".join(lines[:5]) + lines[5][:20])  # plus a truncated line
    page = write_report(cut).read_text()
    assert 'id="incomplete"' in page
    assert re.search(r'id="overall-count">\d / 5<', page)  # the truncated line is not counted


# -- in a real browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1200,1900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    # explicit driver path: selenium-manager is never asked to download anything
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, script: str, done: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_renders_in_chromium(run: Path, browser: Any, tmp_path: Path) -> None:
    browser.get((run / REPORT_FILE).resolve().as_uri())
    charts = _wait(
        browser,
        "return Array.from(document.querySelectorAll('img.chart')).map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight])",
        lambda v: v and all(c[1] and c[2] > 0 for c in v),
    )
    assert sorted(c[0] for c in charts) == ["chart-lengths", "chart-tasks"]
    assert all(c[2] > 100 and c[3] > 100 for c in charts), charts
    videos = _wait(
        browser,
        "return Array.from(document.querySelectorAll('video')).map(v => [v.readyState, v.videoWidth, v.videoHeight, v.duration, v.error && v.error.code])",
        lambda v: v and all(x[0] >= 1 and x[1] > 0 for x in v),
    )
    assert len(videos) == 4
    for ready, width, height, duration, error in videos:
        assert error is None and ready >= 1, videos
        assert (width, height) == (64, 64)
        assert duration > 0

    overall = _summary(run)["overall"]
    text = browser.find_element("id", "overall-rate").text
    assert text == f"{100 * overall['success_rate']:.1f}%"
    lo, hi = overall["ci95"]
    assert browser.find_element("id", "overall-ci").text == f"[{100 * lo:.1f}%, {100 * hi:.1f}%]"
    assert browser.find_element("id", "overall-count").text == f"{overall['successes']} / {overall['episodes']}"
    task_rows = browser.execute_script("return document.querySelectorAll('#tasks-table tbody tr').length")
    assert task_rows == 2
    reasons = browser.execute_script("return document.getElementById('failures-table').innerText")
    assert "max_steps" in reasons and "env_error" in reasons
    assert 0 < overall["success_rate"] < 1  # the page shows both outcomes

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert _png_size(data)[0] >= 800 and len(data) > 20_000  # a rendered page, not a blank one
    if os.environ.get("ARENA_UPDATE_DOCS") == "1":
        shutil.copy(shot, SCREENSHOT_DOC)
