"""Synthetic spiral galaxies with exactly known inclination, for training and testing IncliNET models.

Real labels carry human scatter (about 2.6° between groups), so a model can only be judged to
degree level on images whose inclination is known exactly. This module draws such images: a
GalSim ``InclinedExponential`` disk of finite thickness (the truth-bearing component) plus a
flattened Sersic bulge, an optional bar, log-spiral arms, flocculent structure and star-forming
clumps, a dusty mid-plane, warps, lopsidedness and an intrinsically non-circular disk; then a
PSF (Moffat or Kolmogorov, wider in g), sky noise, foreground stars (bright ones with diffraction
spikes), faint background galaxies, neighbours, g/r/i bands with different bulge/disk/arm colours,
an SDSS-like Lupton colour composite, asinh grey images per band, and JPEG artefacts.

The framing copies the original cut-outs: the galaxy's D25 fills about 2/3 of the field (1.5×D25)
and the major axis lies close to horizontal (the cut-outs were rotated by the catalogue PA).

Every image carries its truth: inclination (0° = face-on), position angle in the image, colour
mode, and for rejects the reason (``face_on``, ``bright_star``, ``companion``, ``low_snr``,
``cut_off``). Accepted galaxies have inclinations 45–90°.

The arms, dust and lopsidedness are computed by a short ray march through the same 3D disk
(exponential in R, sech² in z) that GalSim draws, and applied as per-band multiplicative maps on
the GalSim image, so they project correctly at every inclination (an edge-on disk shows a
mid-plane dust lane and no arms; a 50° disk shows foreshortened arms with dust lanes on their
inner edges).

Usage::

    from core.synthetic import GeneratorConfig, generate, save_npz
    galaxies = list(generate(GeneratorConfig(), 1000, seed=1, workers=2))
    save_npz("train.npz", galaxies)

Galaxies are seeded from ``(seed, index)``, so a set is identical whatever the number of
workers. Workers use the ``spawn`` start method (``fork`` deadlocks with GalSim).

The package: ``config`` (morphologies, ranges, presets), ``params`` (a galaxy's parameters and images),
``draw`` (parameters from a config), ``profiles`` and ``raymarch`` (the light), ``render`` (the images),
``sets`` (generation and npz files); ``python -m core.synthetic`` times a set. Django-free.
"""
from __future__ import annotations

from .config import (BANDS, MORPHOLOGY_RANGES, REJECT_REASONS, REJECT_RICH_MIX, GeneratorConfig, Morphology,
                     default_config, domain_randomised_config, domain_reject_rich_config, reject_rich_config,
                     robustness_config)
from .draw import draw_params, sample_range
from .params import GalaxyParams, SyntheticGalaxy
from .render import render_galaxy
from .sets import generate, load_npz, save_npz

__all__ = [
    "BANDS",
    "REJECT_REASONS",
    "REJECT_RICH_MIX",
    "MORPHOLOGY_RANGES",
    "Morphology",
    "GeneratorConfig",
    "GalaxyParams",
    "SyntheticGalaxy",
    "default_config",
    "reject_rich_config",
    "robustness_config",
    "domain_randomised_config",
    "domain_reject_rich_config",
    "draw_params",
    "sample_range",
    "render_galaxy",
    "generate",
    "save_npz",
    "load_npz",
]
