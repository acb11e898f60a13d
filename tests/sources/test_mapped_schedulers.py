"""Everything that reads files reads mapped exports: the landing folder of Dagster and Airflow, and `watch`."""

from __future__ import annotations

import shutil

from exports import write_online_shop
from retailflow.backends import connect
from retailflow.integrations.landing import landed_days, landed_files
from retailflow.quality.rules import load_rules
from retailflow.sources.mapping import SourceMap, load_sources
from retailflow.watch import Watcher


def test_the_landing_folder_holds_mapped_exports(tmp_path):
    export = write_online_shop(tmp_path)
    (tmp_path / "sources.yaml").write_text(export.mapping)
    mapping = load_sources(tmp_path / "sources.yaml")
    assert landed_files(export.export) == [], "without the mapping the export is nobody's file"
    assert landed_files(export.export, None, mapping) == list(export.files)
    # online_retail_2010-12.csv names no whole day: it is loaded with every day's run.
    assert landed_files(export.export, "2010-12-13", mapping) == list(export.files)
    assert landed_days(export.export, mapping) == []


def test_watch_loads_a_mapped_export_as_it_lands(tmp_path):
    export = write_online_shop(tmp_path / "made")
    (tmp_path / "sources.yaml").write_text(export.mapping)
    landing = tmp_path / "landing"
    landing.mkdir()
    backend = connect(f"duckdb:///{tmp_path}/watched.duckdb")
    try:
        watcher = Watcher(backend, landing, load_rules(), sources=load_sources(tmp_path / "sources.yaml"))
        shutil.copy(export.files[0], landing)
        assert watcher.poll() is None, "a file is taken once it stayed the same over two polls"
        report = watcher.poll()
        assert report is not None and not report.failed, report
        # 8 invoices, 17 lines, 10 products and 4 customers (tests/exports.py), nothing quarantined.
        assert report.staged == 8 + 17 + 10 + 4 and report.quarantined == 0
        assert backend.scalar("SELECT count(*) FROM staging.store_sales_header WHERE customer_id IS NULL") == 2
    finally:
        backend.close()


def test_without_the_mapping_watch_sets_the_export_aside(tmp_path):
    export = write_online_shop(tmp_path / "made")
    landing = tmp_path / "landing"
    landing.mkdir()
    backend = connect(f"duckdb:///{tmp_path}/watched.duckdb")
    try:
        watcher = Watcher(backend, landing, load_rules(), sources=SourceMap())
        shutil.copy(export.files[0], landing)
        watcher.poll()
        report = watcher.poll()
        assert report is not None and "cannot tell which entity" in report.failed[export.files[0].name]
    finally:
        backend.close()
