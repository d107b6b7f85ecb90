"""IncliNET's Django-free core: the error vocabulary and the galaxy geometry shared by every app.

Nothing here imports Django or any IncliNET app; ``catalog``, ``labeling``, ``training`` and ``predictions``
build on it (the layers are checked by import-linter, see ``.importlinter``).
"""
