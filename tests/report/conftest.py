"""Fixtures for the dashboard tests: the sample dataset with every stage run."""

from __future__ import annotations

import pytest

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import Backend
from retailflow.checks import run_checks
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender


@pytest.fixture
def full_run(staged_sample) -> Backend:
    """The sample with every stage run and the points e-mails sent (simulated)."""
    run_checks(staged_sample)
    run_promotions(staged_sample, min_baseline_days=1)
    run_inventory(staged_sample)
    run_loyalty(staged_sample)
    run_segments(staged_sample)
    outbox.queue(staged_sample)
    outbox.send(staged_sample, LogSender())
    return staged_sample
