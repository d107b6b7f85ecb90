"""Long fuzz run of the image decoder, bounded in time: ``python benchmarks/fuzz_images.py --seconds 300``.

It draws hostile inputs from the generators of ``catalog/tests/test_fuzz_imaging.py`` (random bytes,
bytes behind a magic number, truncated and byte-flipped valid files, huge announced dimensions, PNG
bombs) for the given wall-clock time, checks the same property (only ``ImageError`` escapes, decoded
images respect the pixel limit, every call is quick), and prints counts by outcome. Exit status 1 if
any input broke the property; the offending input is written to ``var/fuzz-failures/``.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")

from catalog.imaging import ImageError  # noqa: E402
from catalog.tests.test_fuzz_imaging import (  # noqa: E402
    DECLARING, FORMATS, MAGIC, check_load, png_bomb, valid_file,
)

Generator = Callable[[np.random.Generator], tuple[str, bytes]]


def _random_bytes(rng: np.random.Generator) -> tuple[str, bytes]:
    return "random", rng.bytes(int(rng.integers(0, 8192)))


def _behind_magic(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt = FORMATS[rng.integers(len(FORMATS))]
    return f"magic-{fmt}", MAGIC[fmt] + rng.bytes(int(rng.integers(0, 8192)))


def _valid(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt = FORMATS[rng.integers(len(FORMATS))]
    return fmt, valid_file(fmt, int(rng.integers(1, 96)), int(rng.integers(1, 96)), int(rng.integers(2**31)))


def _truncated(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt, data = _valid(rng)
    return f"truncated-{fmt}", data[: int(rng.integers(0, len(data)))]


def _flipped(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt, data = _valid(rng)
    mutable = bytearray(data)
    for _ in range(int(rng.integers(1, 32))):
        mutable[int(rng.integers(len(mutable)))] = int(rng.integers(256))
    return f"flipped-{fmt}", bytes(mutable)


def _huge(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt = FORMATS[rng.integers(len(FORMATS))]
    return f"huge-{fmt}", DECLARING[fmt](int(rng.integers(1, 65_536)), int(rng.integers(1, 65_536)))


def _bomb(rng: np.random.Generator) -> tuple[str, bytes]:
    return "png-bomb", png_bomb(int(rng.integers(2_000, 20_000)), int(rng.integers(2_000, 5_000)))


GENERATORS: list[tuple[Generator, float]] = [
    (_random_bytes, 0.15), (_behind_magic, 0.2), (_truncated, 0.25), (_flipped, 0.25), (_huge, 0.13), (_bomb, 0.02),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="wall-clock budget (default 120)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # astropy warns on every damaged FITS file before raising
    rng = np.random.default_rng(args.seed)
    weights = np.array([w for _, w in GENERATORS]) / sum(w for _, w in GENERATORS)
    outcomes: collections.Counter[str] = collections.Counter()
    failures = 0
    slowest = 0.0
    out_dir = Path(__file__).resolve().parent.parent / "var" / "fuzz-failures"
    deadline = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < deadline:
        generator = GENERATORS[rng.choice(len(GENERATORS), p=weights)][0]
        label, data = generator(rng)
        n += 1
        started = time.perf_counter()
        try:
            result = check_load(data)
        except BaseException as exc:  # noqa: BLE001 - the point is to catch anything that escapes
            failures += 1
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{args.seed}-{n}-{label}.bin").write_bytes(data)
            print(f"FAIL {label} ({len(data)} bytes): {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(limit=3)
            continue
        slowest = max(slowest, time.perf_counter() - started)
        kind = "decoded" if not isinstance(result, ImageError) else f"refused:{result.code}"
        outcomes[f"{label.split('-')[0]} {kind}"] += 1
    print(f"seed {args.seed}: {n} inputs in {args.seconds:g} s, {failures} broke the property, "
          f"slowest call {slowest * 1000:.0f} ms")
    for key, count in sorted(outcomes.items()):
        print(f"  {count:7d}  {key}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
