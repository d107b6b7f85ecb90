"""The Zoo on either database: each vendor's SQL, SQLite's write lock, and how database errors reach a volunteer.

These run in both of ``make test``'s runs (PostgreSQL, then the Zoo's tests again on SQLite); where the two
databases differ, the test says what each must do.
"""
from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse

from inclinet_site.resilience import RETRY_AFTER_CONTENTION_S, database_error_retry_after

from labeling import assignment, transactions
from labeling.models import Assignment, VolunteerProfile

SQLITE = "sqlite"


def _other_connection():  # noqa: ANN202
    """A second connection to the same (test) database, as another gunicorn worker would hold."""
    other = connection.copy()
    other.ensure_connection()
    return other


def _give_up_waiting_after_ms(conn, ms: int) -> None:  # noqa: ANN001
    """Fail fast on a held lock instead of waiting the default seconds."""
    if conn.vendor == SQLITE:
        conn.connection.execute(f"PRAGMA busy_timeout = {ms}")
    else:
        with conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{ms}ms'")


def _write_probe(conn) -> None:  # noqa: ANN001
    """A write that touches no row: on SQLite it still needs the database's write lock, on PostgreSQL no lock."""
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {VolunteerProfile._meta.db_table} SET tasks_served = tasks_served WHERE user_id = -1")


@pytest.mark.django_db
def test_an_sql_error_on_the_hot_path_is_a_logged_500_not_a_503(api, grid, targets, no_gold, monkeypatch,  # noqa: ANN001
                                                                caplog) -> None:  # noqa: ANN001
    """Each vendor's candidate query is an error on the other (FOR UPDATE … SKIP LOCKED is a syntax error in
    SQLite, which sqlite3 raises as OperationalError; two-argument MAX() does not exist in PostgreSQL). Run
    the wrong one: that was the 503 "briefly unavailable" that hid the bug from the first SQLite users."""
    queued = {g.id for g in targets(2)}
    real = assignment._candidates_sql
    other_vendor = "postgresql" if connection.vendor == SQLITE else SQLITE
    monkeypatch.setattr(assignment, "_candidates_sql", lambda queue, vendor: real(queue, other_vendor))
    with caplog.at_level(logging.ERROR, logger="inclinet_site.resilience"):
        response = api.post(reverse("labeling:api-next"))
    assert response.status_code == 500, response.content
    assert response.json() == {"status": "failed", "message": "Internal error; it has been logged."}
    assert not response.has_header("Retry-After")
    assert any("a bug, not an outage" in r.getMessage() and r.exc_info for r in caplog.records)
    assert not Assignment.objects.exists()  # the attempt was rolled back

    monkeypatch.setattr(assignment, "_candidates_sql", real)
    served = api.post(reverse("labeling:api-next"))
    assert served.status_code == 200 and served.json()["task"]["galaxy"]["id"] in queued


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_elsewhere_is_a_503_with_retry_after_then_the_task_comes(api, grid, targets,  # noqa: ANN001
                                                                             no_gold) -> None:  # noqa: ANN001
    """Real contention, not a mock: another connection holds the lock that handing out a task needs (SQLite:
    the database's write lock; PostgreSQL: the volunteers' profile table), and this one gives up waiting."""
    queued = {g.id for g in targets(2)}
    holder = _other_connection()
    try:
        with holder.cursor() as cursor:
            if holder.vendor == SQLITE:
                cursor.execute("BEGIN IMMEDIATE")
            else:
                cursor.execute("BEGIN")
                cursor.execute(f"LOCK TABLE {VolunteerProfile._meta.db_table} IN EXCLUSIVE MODE")  # reads still pass
        connection.ensure_connection()
        _give_up_waiting_after_ms(connection, 300)
        refused = api.post(reverse("labeling:api-next"))
        assert refused.status_code == 503, refused.content
        assert refused["Retry-After"] == str(RETRY_AFTER_CONTENTION_S)
        assert refused.json() == {"status": "failed", "message": "The database is briefly unavailable; please retry."}
    finally:
        with holder.cursor() as cursor:
            cursor.execute("ROLLBACK")
        holder.close()
        connection.close()  # drops the short timeout set above
    served = api.post(reverse("labeling:api-next"))
    assert served.status_code == 200, served.content
    assert served.json()["task"]["galaxy"]["id"] in queued  # a target, not a gold standard


@pytest.mark.django_db(transaction=True)
def test_write_transaction_takes_sqlites_write_lock_at_begin_and_leaves_postgres_to_row_locks() -> None:
    other = _other_connection()
    _give_up_waiting_after_ms(other, 100)
    try:
        with transactions.write_transaction():
            connection.ensure_connection()
            if connection.vendor == SQLITE:
                # Held from BEGIN, before any statement: no read-then-upgrade race ("database is locked" at once).
                with pytest.raises(OperationalError) as refused:
                    _write_probe(other)
                assert database_error_retry_after(refused.value) == RETRY_AFTER_CONTENTION_S
            else:
                _write_probe(other)  # PostgreSQL: other writers carry on; the queue rows are locked one by one
        _write_probe(other)  # after COMMIT anyone may write
        # A plain (deferred) transaction holds nothing until it first reads or writes: what IMMEDIATE changes.
        with transaction.atomic():
            _write_probe(other)
    finally:
        other.close()
