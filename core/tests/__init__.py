"""Tests of the Django-free core: geometry, the axial-ratio baseline and the galaxy generator."""
