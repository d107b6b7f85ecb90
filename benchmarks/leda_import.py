"""Benchmark: streaming import of a HyperLEDA-style CSV — time and peak memory at 100k and 1M rows.

Bounded memory means the peak RSS of the 1M-row import stays close to the 100k-row one (the
baseline, measured in the same run), instead of growing with the file as a load-it-all reader would.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inclinet_bench .venv/bin/python benchmarks/leda_import.py
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"


def write_csv(path: Path, rows: int, *, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        handle.write("PGC,al2000,de2000,logd25,pa,objname\n")
        for pgc in range(1, rows + 1):
            handle.write(
                f"{pgc},{rng.uniform(0, 23.999):.6f},{rng.uniform(-89.9, 89.9):.5f},"
                f"{rng.uniform(0.3, 2.5):.3f},{rng.uniform(0, 180):.1f},PGC{pgc:07d}\n"
            )


IMPORT_SNIPPET = """
import json, resource, sys, time
import django
django.setup()
from django.db import connection
from catalog.services import catalogue_import_leda_csv
with connection.cursor() as cursor:  # plain SQL: ORM delete() would load every row into memory
    cursor.execute("DELETE FROM catalog_galaxy WHERE source = 'leda'")
t0 = time.perf_counter()
with open(sys.argv[1], newline="") as stream:
    report = catalogue_import_leda_csv(stream=stream, batch_size=int(sys.argv[2]))
elapsed = time.perf_counter() - t0
print(json.dumps({"rows": report.created, "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_import(csv_path: Path, batch_size: int) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "inclinet_site.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET, str(csv_path), str(batch_size)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (it will be migrated and its LEDA rows replaced).")
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for rows in (args.baseline_rows, args.rows):
        path = OUT / f"leda_{rows}.csv"
        if not path.exists():
            write_csv(path, rows)
        results[rows] = run_import(path, args.batch_size)
        size_mb = path.stat().st_size / 1e6
        r = results[rows]
        print(f"{rows:>9,} rows ({size_mb:6.1f} MB CSV): {r['seconds']:7.1f} s, "
              f"{rows / r['seconds']:8.0f} rows/s, peak RSS {r['peak_rss_mb']:6.1f} MB")
    base, full = results[args.baseline_rows], results[args.rows]
    growth = full["peak_rss_mb"] / base["peak_rss_mb"]
    print(f"peak memory growth for {args.rows // args.baseline_rows}x the rows: {growth:.2f}x "
          f"({'bounded' if growth < 1.5 else 'NOT bounded'})")


if __name__ == "__main__":
    main()
