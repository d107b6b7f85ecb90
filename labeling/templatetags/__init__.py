"""Template tags of the Zoo."""
