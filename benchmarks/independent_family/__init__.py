"""An independent family of galaxy images, for evaluation only: never trained on.

The training generator (``core/synthetic/``) draws galaxies with GalSim and an SDSS-like
observation model. This package shares none of its code, libraries or conventions beyond the truth
vocabulary (inclination, position angle, reject reasons): a 3D emissivity and dust model integrated
along every line of sight with numpy (``model.py``), then its own PSF, sky, noise, stars, stretches,
colour balance and compression (``observe.py``). ``render.py`` writes a fixed, seeded set with a
``truth.csv``; ``benchmarks/independent_accuracy.py`` scores an ensemble on it through the serving path.

Rule: nothing under ``training/`` may import this package (a test checks it), and this package imports
nothing from ``training/`` (so it can never drift toward the generator it is meant to differ from).
"""
from __future__ import annotations

# The project's reject vocabulary (core.synthetic.REJECT_REASONS), repeated here on purpose: this
# package must not import the generator's code. A test checks that the two stay equal as sets.
REJECT_REASONS: tuple[str, ...] = ("face_on", "bright_star", "companion", "low_snr", "cut_off")
ACCEPTED_RANGE = (45.0, 90.0)

__all__ = ["REJECT_REASONS", "ACCEPTED_RANGE"]
