"""IncliNET's Django-free core, shared by every app: for now the error vocabulary (``core.errors``).

Nothing here imports Django or any IncliNET app, so ``catalog``, ``labeling``, ``training`` and ``predictions``
can all build on it.
"""
