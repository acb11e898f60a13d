"""Generator speed: line items written per second, printed as one JSON object.

    python benchmarks/generate.py [LINE_ITEMS] [--no-inventory]      # default 1,000,000 line items

The time covers generate_dataset only (not the imports). `cpu_seconds` counts every thread of
the process, and `load_average` is the 1-minute load when the run ended: on a shared machine,
compare runs by the best of several and read them next to the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from retailflow.generate import GeneratorOptions, generate_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("line_items", nargs="?", type=int, default=1_000_000, help="line items to generate")
    parser.add_argument("--no-inventory", action="store_true", help="skip the daily inventory files")
    args = parser.parse_args()
    options = GeneratorOptions(line_items=args.line_items, days=30, stores=50, products=2000,
                               inventory=not args.no_inventory)
    with tempfile.TemporaryDirectory(prefix="retailflow-gen-") as folder:
        started, cpu_started = time.perf_counter(), time.process_time()
        manifest = generate_dataset(Path(folder), options)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        size = sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
    print(json.dumps({
        "line_items": manifest["line_items"], "requested": args.line_items,
        "off_by_pct": round(100 * (manifest["line_items"] / args.line_items - 1), 2),
        "seconds": round(seconds, 2), "line_items_per_second": round(manifest["line_items"] / seconds),
        "cpu_seconds": round(cpu_seconds, 2), "bytes": size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
