"""Exporting the consensus labels with the catalogue's columns (``pgc, inc, inc_e, inc_flg, inc_n, inc_note``),
as CSV or JSON: directly (``consensus_export``, also the retrain snapshot's source) or as an ``ExportJob`` the
worker writes to a file for download.
"""
from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.utils import timezone

from core.errors import InvalidInput
from inclinet_site.csv_safety import csv_safe_row

from .models import Consensus, ConsensusStatus, ExportJob, ExportStatus, Measurement
from .stats import round_random

EXPORT_COLUMNS = ["pgc", "inc", "inc_e", "inc_flg", "inc_n", "inc_note"]


def _export_rows(*, retired_only: bool) -> Iterable[dict[str, Any]]:
    qs = Consensus.objects.filter(n_votes__gt=0)
    if retired_only:
        qs = qs.filter(retired=True)
    ids_rows = list(qs.select_related("galaxy").order_by("galaxy_id"))
    for start in range(0, len(ids_rows), 2000):
        chunk = ids_rows[start:start + 2000]
        tags: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        notes: dict[int, list[str]] = defaultdict(list)
        for m in Measurement.objects.filter(galaxy_id__in=[c.galaxy_id for c in chunk], counted=True, is_gold=False):
            for reason in m.reasons():
                tags[m.galaxy_id][reason] += 1
            if m.note.strip():
                notes[m.galaxy_id].append(m.note.strip().replace("\n", " "))
        for c in chunk:
            # Published rounding: half-integers up or down at random, reproducibly per galaxy.
            inc = round_random(c.inc, random.Random(c.galaxy_id)) if c.inc is not None else None
            flag = 0 if c.status == ConsensusStatus.ACCEPTED else 1
            tag_list = sorted(tags[c.galaxy_id].items(), key=lambda kv: (-kv[1], kv[0]))
            note = " ".join(f"[{name}]" for name, _ in tag_list)
            if c.status == ConsensusStatus.FACE_ON and "[face_on]" not in note:
                note = ("[face_on] " + note).strip()
            if notes[c.galaxy_id]:
                note = (note + " " + "; ".join(notes[c.galaxy_id]))[:500].strip()
            yield {
                "pgc": c.galaxy.pgc if c.galaxy.pgc is not None else c.galaxy.name,
                "inc": inc if flag == 0 else (0 if inc is None else inc),
                "inc_e": round(c.inc_e, 1) if c.inc_e is not None else 0,
                "inc_flg": flag, "inc_n": c.n_votes, "inc_note": note,
            }


def consensus_export(*, fmt: str, retired_only: bool = True) -> tuple[bytes, int]:
    """The consensus labels as CSV or JSON with the catalogue's columns; returns (bytes, rows)."""
    rows = list(_export_rows(retired_only=retired_only))
    if fmt == "json":
        return json.dumps(rows, indent=1).encode(), len(rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        # Notes are volunteers' free text: "=HYPERLINK(...)" must reach a spreadsheet as text, not a formula.
        writer.writerows(csv_safe_row(row) for row in rows)
        return buffer.getvalue().encode(), len(rows)
    raise InvalidInput("format must be csv or json.")


def export_job_create(*, user: AbstractBaseUser, fmt: str, retired_only: bool = True) -> ExportJob:
    if fmt not in ("csv", "json"):
        raise InvalidInput("format must be csv or json.")
    return ExportJob.objects.create(requested_by=user, fmt=fmt, retired_only=retired_only)


def export_job_run(*, job_id: str) -> ExportJob:
    """Run by the Celery worker: write the file and mark the job done (or failed, with the error)."""
    job = ExportJob.objects.get(pk=job_id)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING)
    try:
        data, n = consensus_export(fmt=job.fmt, retired_only=job.retired_only)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        job.file.save(f"zoo-consensus-{stamp}-{str(job.pk)[:8]}.{job.fmt}", ContentFile(data), save=False)
        job.n_rows, job.status, job.finished_at = n, ExportStatus.DONE, timezone.now()
        job.save()
    except Exception as exc:  # the job records why it failed; the worker log has the traceback
        ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.FAILED, error=str(exc)[:2000],
                                                   finished_at=timezone.now())
        raise
    return job
