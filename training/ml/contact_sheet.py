"""Contact sheet of synthetic galaxies: colour and grey examples labelled with inclination / reason.

    python -m training.ml.contact_sheet --out docs/img/synthetic-contact-sheet.png

Renders a 6 × 6 grid: 18 galaxies, each as its colour composite and one asinh grey band: 12 accepted
galaxies ordered by inclination (45–90°, cycling through the morphologies), then one of each reject
reason and a second kind of cut-off. Django-free.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.synthetic import REJECT_REASONS, GeneratorConfig, SyntheticGalaxy, draw_params, render_galaxy, robustness_config

__all__ = ["pick_examples", "contact_sheet", "main"]


def pick_examples(config: GeneratorConfig, *, seed: int, n_accepted: int = 12, rejects: tuple[str, ...] = REJECT_REASONS,
                  max_draws: int = 4000) -> list[SyntheticGalaxy]:
    """Accepted galaxies spread evenly over 45–90° (cycling through the preset's morphologies) plus
    one of each reject reason and a second ``cut_off`` of another kind. Drawn from the set, not forced."""
    targets = list(np.linspace(46, 89.5, n_accepted))
    morphs = list(config.morphology_mix)
    chosen_acc: dict[int, tuple[float, int]] = {}
    chosen_rej: dict[str, int] = {}
    cut_modes: dict[str, int] = {}
    for index in range(max_draws):
        p = draw_params(config, seed=seed, index=index)
        if p.accepted:
            k = int(np.argmin([abs(p.inclination - t) for t in targets]))
            err = abs(p.inclination - targets[k])
            if p.morphology == morphs[k % len(morphs)] and (k not in chosen_acc or err < chosen_acc[k][0]):
                chosen_acc[k] = (err, index)
        elif p.reason == "cut_off" and p.mask:
            cut_modes.setdefault(str(p.mask["mode"]), index)
        elif p.reason in rejects and p.reason not in chosen_rej:
            chosen_rej[p.reason] = index
        done = len(chosen_acc) == n_accepted and all(e < 1.0 for e, _ in chosen_acc.values())
        if done and len(chosen_rej) >= len(set(rejects) - {"cut_off"}) and len(cut_modes) >= 2:
            break
    order = [chosen_acc[k][1] for k in sorted(chosen_acc)]
    order += [chosen_rej[r] for r in rejects if r in chosen_rej]
    order += [cut_modes[m] for m in ("mask", "edge", "zoom") if m in cut_modes][:2]
    return [render_galaxy(draw_params(config, seed=seed, index=i)) for i in order]


def _label(g: SyntheticGalaxy) -> str:
    t = g.truth
    text = f"{t['inclination']:.0f}°"
    if not t["accepted"]:
        text += f" {t['reason']}"
        if t["reason"] == "cut_off" and t.get("mask"):
            text += f" ({t['mask']['mode']})"
    return f"{text} {t['morphology']}"


def contact_sheet(galaxies: list[SyntheticGalaxy], path: str | Path, *, band: str = "r", columns: int = 3,
                  title: str | None = None, thumb: int = 104, colors: int = 256) -> Path:
    """Write a PNG grid: per galaxy its colour image and the ``band`` grey image, labelled.

    Tiles are shown at ``thumb`` pixels (area-resampled) and the sheet is saved with a ``colors``
    palette, which keeps a 6 × 6 sheet of noisy images under about 400 KB.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = int(np.ceil(len(galaxies) / columns))
    size = thumb
    dpi = 100
    fig = plt.figure(figsize=(2 * columns * (size + 6) / dpi, rows * (size + 18) / dpi + (0.25 if title else 0)), dpi=dpi)
    top = 1 - (0.3 if title else 0.14) / fig.get_figheight()
    grid = fig.add_gridspec(rows, 2 * columns, left=0.005, right=0.995, bottom=0.005, top=top, wspace=0.04, hspace=0.16)
    for k, g in enumerate(galaxies):
        r, c = divmod(k, columns)
        for j, (img, cmap) in enumerate(((g.colour, None), (g.band(band), "gray"))):
            ax = fig.add_subplot(grid[r, 2 * c + j])
            ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="antialiased", interpolation_stage="rgba")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(_label(g), fontsize=7.5, loc="left", pad=2)
            else:
                ax.set_title(band, fontsize=7.5, loc="right", pad=2)
    if title:
        fig.suptitle(title, fontsize=9, y=0.997)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    # A small palette keeps the PNG small (the galaxies are JPEG-noisy anyway).
    with Image.open(tmp) as im:
        im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    tmp.unlink()
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/img/synthetic-contact-sheet.png")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--band", default="r", choices=["g", "r", "i"])
    parser.add_argument("--robustness", action="store_true", help="use the robustness preset")
    args = parser.parse_args(argv)
    config = robustness_config(reject_fraction=0.3) if args.robustness else GeneratorConfig(reject_fraction=0.3)
    galaxies = pick_examples(config, seed=args.seed)
    name = "robustness preset" if args.robustness else "training preset"
    out = contact_sheet(galaxies, args.out, band=args.band,
                        title=f"Synthetic galaxies ({name}, seed {args.seed}): colour and {args.band}-band asinh grey")
    print(f"{out} ({out.stat().st_size / 1024:.0f} KB, {len(galaxies)} galaxies)")


if __name__ == "__main__":
    main()
