"""A mapped line-level export re-sent with corrections restates its days, headers and lines together."""

from __future__ import annotations

from exports import write_online_shop
from retailflow import audit
from retailflow.backends import connect
from retailflow.ingest import discover
from retailflow.quality.rules import load_rules
from retailflow.running import load_and_validate
from retailflow.sources.mapping import load_sources


def test_a_corrected_export_restates_what_it_sent(tmp_path):
    export = write_online_shop(tmp_path)
    (tmp_path / "sources.yaml").write_text(export.mapping)
    sources = load_sources(tmp_path / "sources.yaml")
    backend = connect(f"duckdb:///{tmp_path}/restated.duckdb")
    try:
        load_and_validate(backend, discover([export.export], sources=sources), load_rules())
        # The correction: invoice 536365's lantern line was 6, not 8, cream hangers (8 * 2.75 -> 6 * 2.75 = 16.50),
        # and the anonymous invoice 536592 of 12/13 was never rung up.
        path = export.files[0]
        lines = path.read_text().splitlines()
        lines = [line.replace("84406B,CREAM CUPID HEARTS COAT HANGER,8,", "84406B,CREAM CUPID HEARTS COAT HANGER,6,")
                 for line in lines if not line.startswith("536592,")]
        path.write_text("\n".join(lines) + "\n")
        ingested, _ = load_and_validate(backend, discover([export.export], sources=sources), load_rules(),
                                        restate=True)
        assert {result.entity for result in ingested if result.status == "loaded"} >= {
            "store_sales_header", "store_sales_line_items"}
        totals = dict(backend.fetch("SELECT transaction_id, CAST(total_amount AS VARCHAR) "
                                    "FROM staging.store_sales_header")[1])
        # 57.64 - 22.00 + 16.50 = 52.14; 536592 gone; net 223.81 - 5.50 - 22.07 = 196.24.
        assert totals["536365"] == "52.14" and "536592" not in totals
        assert backend.scalar("SELECT CAST(sum(total_amount) AS VARCHAR) FROM staging.store_sales_header") == "196.24"
        assert backend.scalar("SELECT count(*) FROM staging.store_sales_line_items") == 17 - 2
        assert all(balance.balanced for balance in audit.reconcile(backend))
    finally:
        backend.close()
