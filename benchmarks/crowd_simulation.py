"""Benchmark: a simulated crowd of biased volunteers voting through the Zoo's real API, and the RMS of the
uncalibrated median, the calibrated consensus and the oracle against the truth (``docs/labeling.md``).

Run it against a scratch database: it creates synthetic standards, galaxies and users.

    psql -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS inclinet_crowd" -c "CREATE DATABASE inclinet_crowd"
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/inclinet_crowd DEBUG=true
    .venv/bin/python manage.py migrate -v0
    .venv/bin/python benchmarks/crowd_simulation.py --seed 11

The harness itself is ``tests/crowd_simulation.py`` (shared with ``labeling/tests/test_crowd.py``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volunteers", type=int, default=30)
    parser.add_argument("--galaxies", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibrate-every", type=int, default=400, help="Run the calibration every N votes")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    import django

    django.setup()
    from tests.crowd_simulation import simulate_crowd

    result = simulate_crowd(n_volunteers=args.volunteers, n_galaxies=args.galaxies, seed=args.seed,
                            calibrate_every=args.calibrate_every, log=print)
    for line in result.lines():
        print(line)


if __name__ == "__main__":
    main()
