"""IncliNET's Django-free core, shared by every app.

- ``core.errors``: the error vocabulary of the services (HTTP-free kinds that ``inclinet_site.api`` maps once);
- ``core.geometry``: the oblate-disk relation between inclination and axis ratio (Holmberg's q0) and the
  networks' input size;
- ``core.axial_ratio``: the axial-ratio baseline, an inclination measured from an image's outer isophote;
- ``core.synthetic``: the one galaxy generator, seeded galaxies with known truth for training, tests and demos.

Nothing here imports Django or any IncliNET app, so ``catalog``, ``labeling``, ``training`` and ``predictions``
can all build on it.
"""
