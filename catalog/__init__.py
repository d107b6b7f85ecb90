"""Catalogue domain: galaxies, their names and images, name/coordinate resolution, image sources."""
