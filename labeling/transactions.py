"""The Zoo's write transactions: ``write_transaction``, the one way its services open a read-then-write block.

Assignment and submission are the hot path. Both run in one short transaction each. On PostgreSQL a galaxy's
queue row (``Consensus``) is the lock that serialises its slots, taken with ``SKIP LOCKED`` when handing out
work so concurrent volunteers never wait on each other. SQLite (the embedded default of ``make run``) has no
row locks: there every writing transaction takes the database's write lock when it begins, so assignments
are handed out one at a time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def write_transaction() -> Iterator[None]:
    """``transaction.atomic()`` for a block that reads and then writes; on SQLite it begins ``IMMEDIATE``.

    SQLite has no row locks (``select_for_update`` is a no-op there) and allows one writer at a time. A
    default (deferred) transaction reads under a shared lock, and when it then writes while another
    connection is writing SQLite answers "database is locked" at once instead of waiting (waiting could
    deadlock). ``BEGIN IMMEDIATE`` takes the write lock up front and waits for it (the busy timeout), so the
    read-decide-write of an assignment or a submit runs alone: nobody is leased a slot twice. PostgreSQL
    keeps plain ``atomic()`` and its row locks. Nested blocks are savepoints and change nothing.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    connection.ensure_connection()  # a new connection would reset transaction_mode from the settings
    configured = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"  # read by the BEGIN that atomic() issues on entry
    try:
        with transaction.atomic():
            connection.transaction_mode = configured
            yield
    finally:
        connection.transaction_mode = configured
