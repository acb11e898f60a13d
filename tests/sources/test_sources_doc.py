"""The mapping docs/reference/sources.md shows is a working one: it reads the online shop's export as its contract twin."""

from __future__ import annotations

import re
from pathlib import Path

from exports import write_online_shop
from retailflow.backends import connect
from retailflow.ingest import discover
from retailflow.model import ENTITIES
from retailflow.quality.rules import load_rules
from retailflow.running import load_and_validate
from retailflow.sources.mapping import load_sources

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "sources.md"


def _staged(url: str, paths: list[Path], sources=None) -> dict[str, list]:
    backend = connect(url)
    try:
        files = discover(paths, sources=sources) if sources else discover(paths)
        _, outcome = load_and_validate(backend, files, load_rules())
        assert outcome.quarantined == 0
        return {name: sorted(map(repr, backend.fetch(f"SELECT {', '.join(entity.column_names)} FROM staging.{name}")[1]))
                for name, entity in ENTITIES.items()}
    finally:
        backend.close()


def test_the_documented_mapping_reads_the_online_shop(tmp_path):
    example = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    (tmp_path / "sources.yaml").write_text(example)
    export = write_online_shop(tmp_path)
    mapped = _staged(f"duckdb:///{tmp_path}/mapped.duckdb", [export.export], load_sources(tmp_path / "sources.yaml"))
    assert mapped == _staged(f"duckdb:///{tmp_path}/contract.duckdb", [export.contract])
    assert len(mapped["store_sales_header"]) == 8 and len(mapped["store_sales_line_items"]) == 17
