"""``python -m core.synthetic``: generate a set of galaxies, report the speed, optionally save it. Django-free."""
from __future__ import annotations

import argparse
import time

from .config import default_config, robustness_config
from .draw import draw_params
from .render import render_galaxy
from .sets import generate, save_npz


def main(argv: list[str] | None = None) -> None:
    """``python -m core.synthetic --n 200 --workers 2 [--out set.npz] [--robustness]``: generate a
    set, report the speed, optionally save it."""
    parser = argparse.ArgumentParser(description="Generate synthetic galaxies and report the speed.")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reject-fraction", type=float, default=0.0)
    parser.add_argument("--robustness", action="store_true")
    parser.add_argument("--out", default=None, help="write the set to this .npz")
    args = parser.parse_args(argv)
    config = (robustness_config if args.robustness else default_config)(reject_fraction=args.reject_fraction)
    if args.workers <= 1:
        render_galaxy(draw_params(config, seed=args.seed, index=-1 % 2**31))  # warm imports and caches
    start = time.perf_counter()
    galaxies = list(generate(config, args.n, seed=args.seed, workers=args.workers))
    seconds = time.perf_counter() - start
    print(f"{args.n} galaxies in {seconds:.1f} s with {args.workers} worker(s): {1000 * seconds / args.n:.1f} ms per "
          f"galaxy wall, {1000 * seconds * max(args.workers, 1) / args.n:.1f} ms per galaxy per core")
    if args.out:
        save_npz(args.out, galaxies, config=config)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
