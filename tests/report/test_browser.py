"""The report in a real browser (Debian's chromium, headless, offline): every chart drawn, no script errors.

`make test` installs chromium where it is missing; without it these tests are skipped with the reason.
A screenshot is kept in test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_text import LEAKED_MISSING, visible_text

from retailflow.report.dashboard import build_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs "
                                                         "it with apt-get; `apt-get install -y chromium`)")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Headless chromium with no network at all (every host name fails to resolve)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr",
             "--virtual-time-budget=15000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


# Rendering is the browser's work on the same HTML whatever engine filled it (test_dashboard builds every
# section on every engine): one engine here keeps the suite within its time.
@pytest.mark.parametrize("db_url", ["duckdb"], indirect=True)
def test_report_renders_in_a_real_browser(full_run, tmp_path):
    info = build_report(full_run, tmp_path / "report.html")
    url = info.path.resolve().as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile")
    assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
    errors = re.search(r'data-js-errors="([^"]*)"', dom.stdout)
    assert errors is None, f"JavaScript errors: {errors.group(1)}"
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    assert f'data-charts-rendered="{info.charts}"' in dom.stdout
    plots = re.findall(r'<div class="plot[^"]*"[^>]*data-figure="[^"]+"', dom.stdout)
    assert len(plots) == info.charts and dom.stdout.count('class="main-svg"') >= info.charts
    text = visible_text(dom.stdout)  # with the axis labels, legends and cell texts Plotly drew
    assert not LEAKED_MISSING.search(text), LEAKED_MISSING.search(text)
    assert "ann@example.com" not in dom.stdout

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"report-{full_run.dialect}.png"
    screenshot.unlink(missing_ok=True)
    shot = chromium("--window-size=1280,2400", f"--screenshot={screenshot}", url, profile=tmp_path / "profile")
    assert screenshot.exists() and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
