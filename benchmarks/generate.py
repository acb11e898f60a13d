"""Generator speed: line items written per second, printed as one JSON object.

    python benchmarks/generate.py [LINE_ITEMS]      # default 1,000,000
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from retailflow.generate import GeneratorOptions, generate_dataset


def main() -> None:
    line_items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="retailflow-gen-") as folder:
        started = time.perf_counter()
        manifest = generate_dataset(Path(folder), GeneratorOptions(line_items=line_items, days=30, stores=50,
                                                                    products=2000))
        seconds = time.perf_counter() - started
        size = sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
    print(json.dumps({
        "line_items": manifest["line_items"], "seconds": round(seconds, 2),
        "line_items_per_second": round(manifest["line_items"] / seconds), "bytes": size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
