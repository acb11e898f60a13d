"""The dashboard: every section present, nothing unreadable, and it really renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.segmentation import run_segments
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.report.dashboard import build_report
from retailflow.report.sections import SECTIONS, mask_email

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def visible_text(html: str) -> str:
    body = html.split("<body>", 1)[1]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


@pytest.fixture
def full_run(staged_sample):
    run_promotions(staged_sample, min_baseline_days=1)
    run_inventory(staged_sample)
    run_loyalty(staged_sample)
    run_segments(staged_sample)
    outbox.queue(staged_sample)
    outbox.send(staged_sample, LogSender())
    return staged_sample


def test_every_section_is_built(full_run, tmp_path):
    info = build_report(full_run, tmp_path / "report.html")
    html = info.path.read_text()
    assert info.sections_missing == [] and info.charts >= 15
    for spec in SECTIONS:
        assert f'id="{spec.key}"' in html and spec.title in html
    text = visible_text(html)
    for word in ("nan", "None", "NaT", "null"):
        assert not re.search(rf"\b{word}\b", text), word
    assert "ann@example.com" not in html and "a***@example.com" in html
    assert not re.search(r"<script[^>]+src=", html)  # self-contained: Plotly is inlined
    assert "Not run yet" not in html


def test_missing_stages_say_what_to_run(staged_sample, tmp_path):
    info = build_report(staged_sample, tmp_path / "report.html")
    html = info.path.read_text()
    assert set(info.sections_missing) == {"promotions", "loyalty", "segments", "inventory"}
    assert "run <code>retailflow loyalty</code>" in html
    assert html.count("Not run yet") == 4


def test_emails_are_masked():
    assert mask_email("john.smith@example.com") == "j***@example.com"
    assert mask_email(None) == "" and mask_email("broken") == "b***"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_report_renders_in_a_real_browser(full_run, tmp_path):
    info = build_report(full_run, tmp_path / "report.html")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=10000"]
    url = info.path.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "data-js-errors" not in dom
    assert dom.count('class="main-svg"') >= info.charts
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{full_run.dialect}.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1400,3000", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 50_000
