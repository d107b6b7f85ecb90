"""Read-only queries of the Zoo: images, standards, volunteer statistics, progress and agreement reports.

Also what keeps gold answers hidden: per-assignment signed URLs for task targets (``task_image_urls``), neutral
names for galaxies whose designation could give their answer away (``volunteer_galaxy_label``), and the split of
standards into practice ones (tutorial examples, never gold) and gold-eligible ones (``is_practice_standard``).
"""
from __future__ import annotations

import io
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from catalog.models import Galaxy, GalaxyImage, ImageKind

from .conf import zoo_setting
from .models import (
    Assignment, AssignmentStatus, Consensus, ConsensusStatus, Measurement, Role, Standard, VolunteerCalibration,
    VolunteerProfile,
)
from .stats import rms, scatter, weighted_median

KINDS = [ImageKind.COLOUR.value, ImageKind.G.value, ImageKind.R.value, ImageKind.I.value]


def volunteer_role(*, user: AbstractBaseUser) -> str:
    """Django staff are always Zoo staff; otherwise the profile's role (a volunteer without one)."""
    if not user.is_authenticated:
        return ""
    if user.is_staff or user.is_superuser:
        return Role.STAFF
    profile = VolunteerProfile.objects.filter(user=user).only("role").first()
    return profile.role if profile else Role.VOLUNTEER


def _serve_media_directly() -> bool:
    direct = zoo_setting("SERVE_MEDIA_DIRECTLY")  # None: as DEBUG
    return settings.DEBUG if direct is None else bool(direct)


def _image_url(image: GalaxyImage) -> str:
    # With DEBUG (or a web server in front of MEDIA_ROOT) the file URL works; otherwise the Zoo serves the file.
    if _serve_media_directly():
        return image.file.url
    return reverse("labeling:image", args=[image.pk])


def image_urls_for_galaxies(*, galaxy_ids: list[int]) -> dict[int, dict[str, str]]:
    """``{galaxy_id: {colour, g, r, i}}``; a missing band falls back to the colour image (or any image)."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for image in GalaxyImage.objects.filter(galaxy_id__in=galaxy_ids).only("id", "galaxy_id", "kind", "file"):
        found[image.galaxy_id].setdefault(image.kind, _image_url(image))
    result: dict[int, dict[str, str]] = {}
    for galaxy_id in galaxy_ids:
        have = found.get(galaxy_id, {})
        fallback = have.get(ImageKind.COLOUR.value) or next(iter(have.values()), "")
        result[galaxy_id] = {kind: have.get(kind, fallback) for kind in KINDS}
    return result


@dataclass(frozen=True)
class GalaxyCard:
    id: int
    name: str
    pgc: int | None
    images: dict[str, str]


def galaxy_cards(*, galaxy_ids: list[int]) -> dict[int, GalaxyCard]:
    """Name, PGC and image URLs (as ``image_urls_for_galaxies``) of a few galaxies in one query: a LEFT JOIN of
    galaxy and images, so a task page costs one round trip for its target and its standards together."""
    rows = (Galaxy.objects.filter(pk__in=galaxy_ids).order_by("id", "images__id")
            .values_list("id", "name", "pgc", "images__id", "images__kind", "images__file"))
    storage = GalaxyImage._meta.get_field("file").storage
    direct = _serve_media_directly()
    names: dict[int, tuple[str, int | None]] = {}
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for galaxy_id, name, pgc, image_id, kind, file_name in rows:
        names[galaxy_id] = (name, pgc)
        if image_id is not None and kind not in found[galaxy_id]:
            # Same URL as _image_url, without building a model instance per image.
            found[galaxy_id][kind] = storage.url(file_name) if direct else reverse("labeling:image", args=[image_id])
    cards: dict[int, GalaxyCard] = {}
    for galaxy_id, (name, pgc) in names.items():
        have = found.get(galaxy_id, {})
        fallback = have.get(ImageKind.COLOUR.value) or next(iter(have.values()), "")
        cards[galaxy_id] = GalaxyCard(id=galaxy_id, name=name, pgc=pgc,
                                      images={kind: have.get(kind, fallback) for kind in KINDS})
    return cards


# --- gold answers stay hidden ------------------------------------------------------------------

_TASK_IMAGE_SALT = "labeling.task_image"


def task_image_token(*, assignment_id: int, kind: str) -> str:
    """An unguessable signature of (assignment, band): the target's image URL differs for every task, so it
    never equals the URL under which the same galaxy is shown as a standard (tutorial, step grids)."""
    return salted_hmac(_TASK_IMAGE_SALT, f"{assignment_id}:{kind}", algorithm="sha256").hexdigest()[:32]


def task_image_token_valid(*, assignment_id: int, kind: str, token: str) -> bool:
    return kind in KINDS and constant_time_compare(token, task_image_token(assignment_id=assignment_id, kind=kind))


def task_image_urls(*, assignment_id: int) -> dict[str, str]:
    """``{colour, g, r, i}`` URLs of a task's target (a missing band is served as the colour image)."""
    return {kind: reverse("labeling:task-image",
                          args=[assignment_id, kind, task_image_token(assignment_id=assignment_id, kind=kind)])
            for kind in KINDS}


def task_image_flip(*, assignment_id: int) -> str:
    """How this task shows its target: mirrored left-right, top-bottom or both (never as stored), chosen by the
    signature, so the bytes never match the standard's own file. Any of the three keeps the inclination and
    the major axis horizontal."""
    return ("lr", "tb", "both")[int(task_image_token(assignment_id=assignment_id, kind="flip")[:8], 16) % 3]


def task_target_image(*, galaxy_id: int, kind: str) -> GalaxyImage | None:
    """The stored image of a target for one band, else its colour image, else any image."""
    images = {image.kind: image for image in GalaxyImage.objects.filter(galaxy_id=galaxy_id).order_by("-id")}
    return images.get(kind) or images.get(ImageKind.COLOUR.value) or next(iter(images.values()), None)


def volunteer_galaxy_label(*, galaxy_id: int, name: str) -> str:
    """The name volunteers see. Generated galaxies (``SYN-…``, e.g. ``SYN-STD-89-1``) carry their answer in the
    name, so they are shown as "Galaxy <id>"; catalogue designations (NGC, PGC, …) say nothing about it."""
    return f"Galaxy {galaxy_id}" if name.upper().startswith("SYN-") else name


# Every third standard (by id) is a practice standard: a tutorial example whose answer is shown, never a gold
# task. The rule depends on nothing but the standard itself, so adding or retiring standards never turns a
# standard that the tutorial has shown into a gold task.
PRACTICE_EVERY = 3


def is_practice_standard(standard_id: int) -> bool:
    return standard_id % PRACTICE_EVERY == 0


def practice_standard_pool(pool: list[StandardRow] | None = None) -> list[StandardRow]:
    """The active standards the tutorial may use as practice targets (none of them is ever a gold task)."""
    return [s for s in (pool if pool is not None else standard_pool()) if is_practice_standard(s.id)]


@dataclass(frozen=True)
class StandardRow:
    id: int
    galaxy_id: int
    inclination: float
    display_scale: float
    display_angle: float


def standard_pool() -> list[StandardRow]:
    """All active standards (a few hundred at most: one cheap query)."""
    return [
        StandardRow(*row) for row in Standard.objects.filter(active=True).values_list(
            "id", "galaxy_id", "inclination", "display_scale", "display_angle")
    ]


def step_values(*, step: int, low: int | None = None) -> list[int]:
    """Step 1: 45, 50, … 85 (the gaps are the nine 5° intervals 45–50 … 85–90).
    Step 2: nine integers 1° apart covering ``[low, low+5]`` with a margin, kept inside 45–90."""
    if step == 1:
        return list(range(45, 90, 5))
    assert low is not None
    start = min(max(low - 2, 45), 82)
    return list(range(start, start + 9))


def standards_draw(*, step: int, low: int | None, exclude_galaxy_id: int | None, rng: random.Random,
                   pool: list[StandardRow] | None = None) -> list[StandardRow]:
    """One random standard per grid value (nearest unused one when none rounds to it), sorted left to right."""
    pool = [s for s in (pool if pool is not None else standard_pool()) if s.galaxy_id != exclude_galaxy_id]
    by_value: dict[int, list[StandardRow]] = defaultdict(list)
    for standard in pool:
        by_value[int(math.floor(standard.inclination + 0.5))].append(standard)
    chosen: list[StandardRow] = []
    used: set[int] = set()
    for value in step_values(step=step, low=low):
        candidates = [s for s in by_value.get(value, []) if s.id not in used]
        if not candidates:
            rest = [s for s in pool if s.id not in used]
            if not rest:
                break
            best = min(abs(s.inclination - value) for s in rest)
            candidates = [s for s in rest if abs(s.inclination - value) == best]
        pick = rng.choice(candidates)
        used.add(pick.id)
        chosen.append(pick)
    return sorted(chosen, key=lambda s: (s.inclination, s.id))


def calibrations_for(*, user_ids: list[int] | set[int]) -> dict[int, tuple[float, float, float]]:
    """``{user_id: (a, b, weight)}``; volunteers never calibrated get the identity and weight 1."""
    rows = VolunteerCalibration.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "a", "b", "weight")
    found = {uid: (a, b, w) for uid, a, b, w in rows}
    return {uid: found.get(uid, (1.0, 0.0, 1.0)) for uid in user_ids}


def volunteer_stats(*, user: AbstractBaseUser) -> dict[str, Any]:
    """Counts, agreement with the consensus on settled galaxies, accuracy on gold, and the calibration."""
    measurements = Measurement.objects.filter(user=user)
    counts = measurements.aggregate(
        total=Count("id"), gold=Count("id", filter=_q(is_gold=True)), rejected=Count("id", filter=_q(rejected=True)),
        face_on=Count("id", filter=_q(face_on=True)),
    )
    skipped = Assignment.objects.filter(user=user, status=AssignmentStatus.SKIPPED).count()
    calibration = VolunteerCalibration.objects.filter(user=user).first()
    a, b = (calibration.a, calibration.b) if calibration else (1.0, 0.0)
    rows = (measurements.filter(counted=True, is_gold=False, inclination_raw__isnull=False,
                                galaxy__zoo_consensus__status=ConsensusStatus.ACCEPTED,
                                galaxy__zoo_consensus__retired=True)
            .values_list("inclination_raw", "galaxy__zoo_consensus__inc"))
    deltas = [a * raw + b - inc for raw, inc in rows if inc is not None]
    gold = measurements.filter(is_gold=True, inclination_raw__isnull=False).values_list(
        "inclination_raw", "galaxy__zoo_standard__inclination")
    gold_deltas = [raw - truth for raw, truth in gold if truth is not None]
    return {
        "measurements": counts["total"], "gold": counts["gold"], "rejected": counts["rejected"],
        "face_on": counts["face_on"], "skipped": skipped,
        "agreement": {"n": len(deltas), "rms": _round(rms(deltas)),
                      "bias": _round(sum(deltas) / len(deltas)) if deltas else None},
        "gold_accuracy": {"n": len(gold_deltas), "rms": _round(rms(gold_deltas))},
        "calibration": {"a": round(a, 4), "b": round(b, 3), "n": calibration.n if calibration else 0,
                        "scatter": _round(calibration.scatter if calibration else None)},
    }


def measurement_list_for_user(*, user: AbstractBaseUser, limit: int = 200) -> list[dict[str, Any]]:
    rows = (Measurement.objects.filter(user=user).select_related("galaxy").order_by("-created_at")[:limit])
    galaxy_ids = [m.galaxy_id for m in rows]
    consensus = {c.galaxy_id: c for c in Consensus.objects.filter(galaxy_id__in=galaxy_ids, retired=True)}
    out = []
    for m in rows:
        c = consensus.get(m.galaxy_id)
        out.append({
            "id": m.id, "inclination": m.inclination,
            "galaxy": str(m.galaxy.pgc or volunteer_galaxy_label(galaxy_id=m.galaxy_id, name=m.galaxy.name)),
            "face_on": m.face_on, "reasons": m.reasons(), "is_gold": m.is_gold, "created_at": m.created_at,
            # Revealed only once the galaxy has retired, so nobody measures with the crowd's answer in view.
            "consensus": _consensus_label(c),
        })
    return out


def _consensus_label(consensus: Consensus | None) -> str | None:
    if consensus is None:
        return None
    if consensus.status == ConsensusStatus.ACCEPTED and consensus.inc is not None:
        return f"{consensus.inc:.0f}"
    return consensus.status or None


def progress_summary(*, days: int = 30) -> dict[str, Any]:
    since = timezone.now() - timedelta(days=days)
    per_day = (Measurement.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
               .values("day").annotate(n=Count("id")).order_by("day"))
    status = Consensus.objects.values("retired", "status", "retire_reason").annotate(n=Count("galaxy_id"))
    return {
        "votes_per_day": [{"day": row["day"].isoformat(), "n": row["n"]} for row in per_day],
        "queue": list(status),
        "retired": sum(row["n"] for row in status if row["retired"]),
        "total": sum(row["n"] for row in status),
    }


def volunteer_gold_accuracy() -> list[dict[str, Any]]:
    rows = (Measurement.objects.filter(is_gold=True, inclination_raw__isnull=False)
            .values_list("user__username", "inclination_raw", "galaxy__zoo_standard__inclination"))
    deltas: dict[str, list[float]] = defaultdict(list)
    for name, raw, truth in rows:
        if truth is not None:
            deltas[name].append(raw - truth)
    return sorted(({"user": name, "n": len(d), "rms": _round(rms(d)), "bias": _round(sum(d) / len(d))}
                   for name, d in deltas.items()), key=lambda r: r["user"])


@dataclass
class AgreementReport:
    """Groups A and B of volunteers, their weighted medians on the galaxies both measured, and the difference."""

    seed: int
    n_a: int
    n_b: int
    galaxies: list[int] = field(default_factory=list)
    inc_a: list[float] = field(default_factory=list)
    inc_b: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.galaxies)

    @property
    def rms(self) -> float | None:
        return rms([a - b for a, b in zip(self.inc_a, self.inc_b, strict=True)])

    @property
    def sigma(self) -> float | None:
        return scatter([a - b for a, b in zip(self.inc_a, self.inc_b, strict=True)])

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "users_a": self.n_a, "users_b": self.n_b, "n": self.n,
                "rms": _round(self.rms), "sigma": _round(self.sigma)}


def agreement_ab_report(*, seed: int = 0, min_per_group: int = 1) -> AgreementReport:
    """Random split of volunteers into A and B; compare the groups' calibrated weighted medians (seed's Fig. 7)."""
    rows = list(Measurement.objects.filter(counted=True, is_gold=False, rejected=False, face_on=False,
                                           inclination_raw__isnull=False)
                .values_list("galaxy_id", "user_id", "inclination_raw"))
    users = sorted({uid for _, uid, _ in rows})
    rng = random.Random(seed)
    rng.shuffle(users)
    group_a = set(users[: len(users) // 2])
    calibration = calibrations_for(user_ids=set(users))
    per: dict[int, tuple[list, list, list, list]] = defaultdict(lambda: ([], [], [], []))
    for galaxy_id, user_id, raw in rows:
        a, b, w = calibration[user_id]
        slot = per[galaxy_id]
        if user_id in group_a:
            slot[0].append(a * raw + b)
            slot[1].append(w)
        else:
            slot[2].append(a * raw + b)
            slot[3].append(w)
    report = AgreementReport(seed=seed, n_a=len(group_a), n_b=len(users) - len(group_a))
    for galaxy_id in sorted(per):
        va, wa, vb, wb = per[galaxy_id]
        if len(va) < min_per_group or len(vb) < min_per_group:
            continue
        ma, mb = weighted_median(va, wa), weighted_median(vb, wb)
        if ma is None or mb is None or ma < 45 or mb < 45:
            continue
        report.galaxies.append(galaxy_id)
        report.inc_a.append(ma)
        report.inc_b.append(mb)
    return report


def agreement_ab_plot_png(*, report: AgreementReport) -> bytes:
    """Group A against group B with the 1:1 line and the RMS and σ in the title, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.subplots()
    axes.plot([45, 90], [45, 90], color="#888", lw=1)
    axes.scatter(report.inc_a, report.inc_b, s=6, alpha=0.6, color="#2f6fd6")
    axes.set_xlim(44, 91)
    axes.set_ylim(44, 91)
    axes.set_xlabel(f"group A median [deg] ({report.n_a} volunteers)")
    axes.set_ylabel(f"group B median [deg] ({report.n_b} volunteers)")
    rms_text = f"{report.rms:.2f}" if report.rms is not None else "-"
    sigma_text = f"{report.sigma:.2f}" if report.sigma is not None else "-"
    axes.set_title(f"N={report.n}  RMS={rms_text}°  σ={sigma_text}°")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _q(**kwargs: Any):  # noqa: ANN202 - tiny helper for aggregate filters
    from django.db.models import Q

    return Q(**kwargs)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# --- catalogue galaxies for the Zoo (ingestion) ------------------------------------------------------------------

def _ingestable() -> Any:
    """Catalogue galaxies (not generated, not uploads) that are not standards."""
    from catalog.models import GalaxySource

    return (Galaxy.objects.exclude(source__in=[GalaxySource.SYNTHETIC, GalaxySource.UPLOAD])
            .exclude(pk__in=Standard.objects.values("galaxy_id")))


def ingest_by_pgc(*, pgcs: list[int]) -> tuple[list[int], list[int]]:
    """Galaxy ids of these PGC numbers in the order given, and the PGC numbers the catalogue lacks."""
    found = dict(_ingestable().filter(pgc__in=pgcs).values_list("pgc", "id"))
    return [found[p] for p in dict.fromkeys(pgcs) if p in found], [p for p in dict.fromkeys(pgcs) if p not in found]


def ingest_by_region(*, ra: float, dec: float, radius_deg: float) -> list[int]:
    """Galaxy ids within ``radius_deg`` of (ra, dec), nearest first (the dec band first, on its index)."""
    from django.db.models import Q

    band = _ingestable().filter(dec__gte=dec - radius_deg, dec__lte=dec + radius_deg)
    widest = abs(dec) + radius_deg
    if widest < 89.0:  # away from the poles, a RA window too (two when it wraps through 0h)
        half = radius_deg / math.cos(math.radians(widest))
        low, high = (ra - half) % 360.0, (ra + half) % 360.0
        if half < 180.0:
            band = band.filter(Q(ra__gte=low, ra__lte=high) if low <= high else Q(ra__gte=low) | Q(ra__lte=high))
    rows = band.values_list("id", "ra", "dec")
    a1, d1 = math.radians(ra), math.radians(dec)
    inside = []
    for galaxy_id, ra2, dec2 in rows:
        a2, d2 = math.radians(ra2), math.radians(dec2)
        # Haversine: exact for small separations, where the cosine formula loses precision.
        h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((a2 - a1) / 2) ** 2
        separation = math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))
        if separation <= radius_deg:
            inside.append((separation, galaxy_id))
    return [galaxy_id for _, galaxy_id in sorted(inside)]


def ingest_top_priority(*, n: int) -> list[int]:
    """The ``n`` unlabelled galaxies the models are least sure of (highest ``labeling_priority``): not yet given
    Zoo images, not voted on."""
    voted = Consensus.objects.filter(galaxy_id=OuterRef("pk"), n_votes__gt=0)
    imaged = GalaxyImage.objects.filter(galaxy_id=OuterRef("pk"), kind=ImageKind.COLOUR.value,
                                        source__startswith="zoo-")
    return list(_ingestable().filter(~Exists(voted), ~Exists(imaged)).order_by("-labeling_priority", "id")
                .values_list("id", flat=True)[:n])


def ingest_jobs(*, limit: int = 20) -> list[Any]:
    from .models import IngestJob

    return list(IngestJob.objects.order_by("-created_at")[:limit])


# --- the standard set: coverage and promotion candidates ---------------------------------------------------------

STANDARD_GRID = (45, 90)  # every integer degree of this range ...
STANDARDS_PER_DEGREE = 3  # ... should have at least this many active standards
PROMOTION_SPREAD = 3.0  # the seed's rule: three measurements within 3° make a standard at their median
PROMOTION_MAX_SCATTER = 3.0  # "small scatter": the consensus' inc_e, degrees


def standard_coverage(*, need: int = STANDARDS_PER_DEGREE) -> dict[str, Any]:
    """Active standards per integer degree over 45–90° (rounded as the step grids round them) and the gaps:
    the degrees with fewer than ``need``."""
    low, high = STANDARD_GRID
    counts = {degree: 0 for degree in range(low, high + 1)}
    for inclination in Standard.objects.filter(active=True).values_list("inclination", flat=True):
        degree = int(math.floor(inclination + 0.5))
        if degree in counts:
            counts[degree] += 1
    degrees = [{"degree": d, "n": n, "missing": max(need - n, 0)} for d, n in counts.items()]
    gaps = [row for row in degrees if row["missing"]]
    return {"need": need, "degrees": degrees, "gaps": gaps, "complete": not gaps,
            "missing": sum(row["missing"] for row in gaps), "total": sum(counts.values())}


@dataclass(frozen=True)
class PromotionWindow:
    """Three calibrated measurements within ``PROMOTION_SPREAD``: the standard would sit at their median."""

    inclination: float
    spread: float
    user_ids: tuple[int, ...]
    experts: int  # how many of the three are experts or staff


def promotion_window(votes: list[tuple[int, float]], experts: set[int]) -> PromotionWindow | None:
    """The tightest three of ``(user_id, calibrated value)`` within 3°, experts' own window first (the seed's
    rule asks for three experts); None when no three agree or the median falls outside 45–90° (90 excluded,
    as the seed's standards were)."""
    def tightest(pool: list[tuple[int, float]]) -> PromotionWindow | None:
        ordered = sorted(pool, key=lambda v: v[1])
        best = None
        for k in range(len(ordered) - 2):
            window = ordered[k:k + 3]
            spread = window[2][1] - window[0][1]
            if spread <= PROMOTION_SPREAD and (best is None or spread < best.spread):
                users = tuple(u for u, _ in window)
                best = PromotionWindow(inclination=window[1][1], spread=spread, user_ids=users,
                                       experts=sum(1 for u in users if u in experts))
        return best if best is not None and 44.5 <= best.inclination < 90 else None

    return tightest([v for v in votes if v[0] in experts]) or tightest(votes)


def _expert_ids(user_ids: set[int]) -> set[int]:
    from django.contrib.auth import get_user_model

    staff = set(get_user_model().objects.filter(pk__in=user_ids, is_staff=True).values_list("pk", flat=True))
    roles = VolunteerProfile.objects.filter(user_id__in=user_ids, role__in=[Role.EXPERT, Role.STAFF])
    return staff | set(roles.values_list("user_id", flat=True))


def promotion_votes(*, galaxy_ids: list[int]) -> dict[int, list[tuple[int, float]]]:
    """Each galaxy's counted, accepted placements as ``(user_id, calibrated value)``."""
    rows = list(Measurement.objects.filter(galaxy_id__in=galaxy_ids, counted=True, is_gold=False, rejected=False,
                                           face_on=False, inclination_raw__isnull=False)
                .values_list("galaxy_id", "user_id", "inclination_raw"))
    calibration = calibrations_for(user_ids={u for _, u, _ in rows})
    votes: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for galaxy_id, user_id, raw in rows:
        a, b, _ = calibration[user_id]
        votes[galaxy_id].append((user_id, min(max(a * raw + b, 0.0), 90.0)))
    return votes


def promotion_candidates(*, limit: int = 100, max_scatter: float = PROMOTION_MAX_SCATTER) -> list[dict[str, Any]]:
    """Retired, accepted galaxies with a small scatter whose votes hold three within 3°: what staff may promote.
    Those that would fill a coverage gap come first."""
    rows = list(Consensus.objects.filter(retired=True, status=ConsensusStatus.ACCEPTED, inc_e__lte=max_scatter,
                                         inc__gte=44.5, inc__lt=90)
                .exclude(galaxy_id__in=Standard.objects.values("galaxy_id"))
                .select_related("galaxy").order_by("inc_e", "galaxy_id")[:2000])
    votes = promotion_votes(galaxy_ids=[c.galaxy_id for c in rows])
    experts = _expert_ids({u for vs in votes.values() for u, _ in vs})
    gaps = {row["degree"] for row in standard_coverage()["gaps"]}
    found = []
    for consensus in rows:
        window = promotion_window(votes.get(consensus.galaxy_id, []), experts)
        if window is None:
            continue
        degree = int(math.floor(window.inclination + 0.5))
        found.append({"galaxy_id": consensus.galaxy_id, "name": consensus.galaxy.name, "pgc": consensus.galaxy.pgc,
                      "inc": consensus.inc, "inc_e": consensus.inc_e, "n_votes": consensus.n_votes,
                      "inclination": round(window.inclination, 2), "spread": round(window.spread, 2),
                      "experts": window.experts, "degree": degree, "fills_gap": degree in gaps})
    found.sort(key=lambda r: (not r["fills_gap"], r["spread"], r["inc_e"]))
    return found[:limit]
