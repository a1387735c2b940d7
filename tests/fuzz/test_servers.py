"""A short live fuzz campaign against each reference server on 127.0.0.1 (bench/fuzz_servers.py runs
the long one): afterwards the process is alive, answers a valid request correctly, and its memory
stayed bounded."""

from __future__ import annotations

import pytest
from fuzz_campaign import gr00t_campaign, openpi_campaign

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

MESSAGES = 60
RSS_BOUND_MB = 50


@pytest.mark.parametrize("campaign", [gr00t_campaign, openpi_campaign], ids=["gr00t", "openpi"])
def test_server_survives_a_fuzz_campaign(campaign) -> None:  # noqa: ANN001
    report = campaign(MESSAGES, seed=7)
    assert report.sent == MESSAGES
    assert (report.crashes, report.hangs, report.lost) == (0, 0, 0), report.line()
    assert report.error_replies > 0  # the junk was answered with errors, not silently accepted
    assert report.rss_after_mb - report.rss_before_mb < RSS_BOUND_MB, report.line()
