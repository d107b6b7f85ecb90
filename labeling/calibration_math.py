"""Volunteer calibration, the numbers alone: fit each volunteer's ``i_adj = a·i + b`` against the consensus
and the gold standards. Django-free: plain tuples, dicts and dataclasses in, a :class:`CalibrationFit` out;
``labeling.calibration`` reads the measurements, calls :func:`calibrate` and writes the coefficients.

Each pass: (1) per volunteer, regress their raw values on the targets (the leave-one-out weighted mean of the
other volunteers' calibrated values, or a gold standard's accepted inclination), using points away from the
grid's censored ends and |Δ| < 10°, and invert the line; (2) anchor the common scale on the gold standards,
which consensus alone cannot fix (everyone could share a bias); (3) recompute the weights from each
volunteer's scatter. Repeat until no volunteer's adjusted value moves by ``tol`` degrees at 50° or 85°.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .stats import fit_line, fit_line_se, weighted_median

# Votes are censored at the grid's ends: left of 45° is a face-on flag (no value) and right of 90° is 90.
# A point enters a volunteer's fit only where their expected raw value lies 2σ inside those ends, so the
# censoring cannot flatten their slope. A volunteer without a fit yet has the identity: targets 53-82°.
RAW_LOW, RAW_HIGH = 45.0, 90.0
CENSOR_MARGIN_SIGMA = 2.0

Coef = tuple[float, float]  # (a, b) of i_adj = a·i + b
IDENTITY: Coef = (1.0, 0.0)
Point = tuple[float, float, float]  # (raw, target, the target's variance)
Line = tuple[float, float, float, float, float]  # raw on target: slope, slope variance, x̄, ȳ, intercept


@dataclass(frozen=True)
class FitSettings:
    max_iter: int
    min_n: int  # points a volunteer needs for a fit of their own (fewer: the identity)
    default_scatter: float  # degrees, for a volunteer without a measured scatter
    tol: float = 0.2  # degrees: below the votes' half-degree resolution


@dataclass
class Votes:
    """The crowd's usable votes: each galaxy's (user, raw) pairs, and each volunteer's (raw, truth) on gold."""

    users: set[int]
    per_galaxy: dict[int, list[tuple[int, float]]]
    gold_points: dict[int, list[tuple[float, float]]]


@dataclass
class FitState:
    """Each volunteer's current line and noise, carried from one pass to the next."""

    coef: dict[int, Coef]
    weight: dict[int, float]  # 1/σ² of the volunteer's own noise: their weight in the others' targets
    scatters: dict[int, float | None]  # about the targets, their noise included
    own_sigmas: dict[int, float | None]  # the volunteer's own noise alone
    fitted: set[int] = field(default_factory=set)  # volunteers with a line of their own
    points: dict[int, list[Point]] = field(default_factory=dict)  # the last pass's points

    @classmethod
    def start(cls, users: set[int]) -> FitState:
        return cls(coef={u: IDENTITY for u in users}, weight={u: 1.0 for u in users},
                   scatters={u: None for u in users}, own_sigmas={u: None for u in users})


@dataclass
class VolunteerFit:
    a: float
    b: float
    scatter: float | None
    weight: float  # in the consensus' weighted median
    n: int  # points of the fit (0 for the identity)
    n_gold: int
    gold_rms: float | None  # calibrated gold values against the standards


@dataclass
class CalibrationFit:
    iterations: int = 0
    converged: bool = False
    volunteers: dict[int, VolunteerFit] = field(default_factory=dict)
    calibrated: int = 0  # volunteers with a fit of their own
    identity: int = 0  # volunteers left at the identity


def votes_from_rows(rows: Iterable[tuple[int, int, float, bool]], gold_truth: Mapping[int, float]) -> Votes:
    """Group ``(user_id, galaxy_id, raw, is_gold)`` rows; a gold vote counts where its standard is known."""
    per_galaxy: dict[int, list[tuple[int, float]]] = defaultdict(list)
    gold_points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    users: set[int] = set()
    for user_id, galaxy_id, raw, is_gold in rows:
        users.add(user_id)
        if is_gold:
            if galaxy_id in gold_truth:
                gold_points[user_id].append((raw, gold_truth[galaxy_id]))
        else:
            per_galaxy[galaxy_id].append((user_id, raw))
    return Votes(users=users, per_galaxy=per_galaxy, gold_points=gold_points)


def uncensored(*, target: float, coef: Coef, scatter: float) -> bool:
    """Whether this volunteer's raw vote on a galaxy at ``target`` is safely away from the grid's ends."""
    a, b = coef
    expected_raw = (target - b) / a
    margin = CENSOR_MARGIN_SIGMA * max(scatter, 2.0) / a
    return RAW_LOW + margin <= expected_raw <= RAW_HIGH - margin


def leave_one_out_points(*, votes: Votes, coef: dict[int, Coef], weight: dict[int, float]) -> dict[int, list[Point]]:
    """Each volunteer's (raw, target, target variance): the others' weighted mean on a shared galaxy, or gold."""
    points: dict[int, list[Point]] = defaultdict(list)
    for galaxy_votes in votes.per_galaxy.values():
        if len(galaxy_votes) < 2:
            continue
        adjusted = [(u, coef[u][0] * raw + coef[u][1], weight[u]) for u, raw in galaxy_votes]
        for index, (user_id, raw) in enumerate(galaxy_votes):
            others = [(v, w) for j, (_, v, w) in enumerate(adjusted) if j != index]
            centre = weighted_median([v for v, _ in others], [w for _, w in others])
            # The weighted mean of the others (outliers dropped) is a less noisy target than their median.
            kept = [(v, w) for v, w in others if abs(v - centre) < 8] or others
            target = sum(v * w for v, w in kept) / sum(w for _, w in kept)
            points[user_id].append((raw, target, 1.0 / sum(w for _, w in kept)))
    for user_id, pairs in votes.gold_points.items():
        points[user_id].extend((raw, truth, 0.0) for raw, truth in pairs)  # a gold target is exact
    return points


def fit_lines(*, users: set[int], points: dict[int, list[Point]], state: FitState,
              settings: FitSettings) -> dict[int, Line]:
    """Regress each volunteer's raw values on their targets, where they have enough usable points."""
    lines: dict[int, Line] = {}
    for user_id in users:
        a0, b0 = state.coef[user_id]
        own_sigma = state.own_sigmas[user_id] or settings.default_scatter
        # Each point weighs by its total variance: the volunteer's own plus the target's (zero for gold).
        usable = [(r, t, 1.0 / (own_sigma ** 2 + var_t)) for r, t, var_t in points.get(user_id, [])
                  if uncensored(target=t, coef=(a0, b0), scatter=own_sigma) and abs(a0 * r + b0 - t) < 10]
        if len(usable) >= settings.min_n and max(t for _, t, _ in usable) - min(t for _, t, _ in usable) >= 10:
            # Raw values on targets, then inverted: i_adj = (i - β)/α. The noisy targets attenuate each
            # slope a little; the gold anchor removes the common part of that.
            fit = fit_line_se([t for _, t, _ in usable], [r for r, _, _ in usable], [w for _, _, w in usable])
            if fit is not None and 0.6 < fit[0] < 1.6:
                lines[user_id] = fit
    return lines


def shrink_slopes(lines: dict[int, Line]) -> dict[int, Line]:
    """Shrink each slope toward the crowd's (empirical Bayes): with ~100 points a slope is uncertain to a few
    per cent, comparable to the true spread between volunteers, and a wrong slope costs most at the ends."""
    if len(lines) < 3:
        return lines
    slopes = [fit[0] for fit in lines.values()]
    mean_slope = sum(slopes) / len(slopes)
    spread = sum((x - mean_slope) ** 2 for x in slopes) / (len(slopes) - 1)
    noise = sum(fit[1] for fit in lines.values()) / len(lines)
    tau2 = max(spread - noise, 1e-4)
    shrunk_lines: dict[int, Line] = {}
    for user_id, (slope, se2, mx, my, _) in lines.items():
        shrunk = mean_slope + tau2 / (tau2 + se2) * (slope - mean_slope)
        shrunk_lines[user_id] = (shrunk, se2, mx, my, my - shrunk * mx)
    return shrunk_lines


def invert_lines(*, users: set[int], lines: dict[int, Line]) -> dict[int, Coef]:
    """Each volunteer's calibration from their raw-on-target line (the identity without one)."""
    coef: dict[int, Coef] = {}
    for user_id in users:
        if user_id not in lines:
            coef[user_id] = IDENTITY
            continue
        alpha, _, _, _, beta = lines[user_id]
        coef[user_id] = (1.0 / alpha, -beta / alpha)
    return coef


def anchor_scale(*, coef: dict[int, Coef], fitted: set[int], votes: Votes, state: FitState,
                 settings: FitSettings) -> None:
    """Fix the common scale in place: on gold (calibrated gold values regressed on the accepted inclinations)
    where there is enough of it, otherwise on the crowd's median volunteer."""
    anchor_x, anchor_y = [], []
    for user_id in fitted:
        a, b = coef[user_id]
        for raw, truth in votes.gold_points.get(user_id, []):
            if uncensored(target=truth, coef=(a, b), scatter=state.own_sigmas[user_id] or settings.default_scatter):
                anchor_x.append(truth)
                anchor_y.append(a * raw + b)
    if len(anchor_x) >= 20:
        line = fit_line(anchor_x, anchor_y, [1.0] * len(anchor_x))
        if line is not None and 0.8 < line[0] < 1.25:
            slope, intercept = line
            for user_id in fitted:
                a, b = coef[user_id]
                coef[user_id] = (a / slope, (b - intercept) / slope)
    elif len(fitted) >= 3:
        # Without enough gold the common scale is free: pin it to the crowd's median volunteer.
        slopes = sorted(coef[u][0] for u in fitted)
        offsets = sorted(coef[u][0] * 67.5 + coef[u][1] - 67.5 for u in fitted)
        m_a, m_off = slopes[len(slopes) // 2], offsets[len(offsets) // 2]
        for user_id in fitted:
            a, b = coef[user_id]
            coef[user_id] = (a / m_a, (b - m_off - 67.5) / m_a + 67.5)


def damped(*, old: dict[int, Coef], new: dict[int, Coef], fitted: set[int]) -> dict[int, Coef]:
    """Half steps for the fitted volunteers. Points enter and leave the fits (censoring window, outlier cut) as
    the lines move, which can make the plain iteration cycle; half steps damp that so it settles."""
    return {u: ((old[u][0] + a) / 2, (old[u][1] + b) / 2) if u in fitted else (a, b) for u, (a, b) in new.items()}


def update_scatters(*, state: FitState, coef: dict[int, Coef], points: dict[int, list[Point]], fitted: set[int],
                    settings: FitSettings) -> None:
    """Each volunteer's scatter of calibrated values about the targets, in ``state``. With the targets' noise
    included it sets the consensus weights after the loop (moderate weights suit a weighted median of three to
    seven votes better than sharp inverse-variance ones); without it, the fit weights and censoring margin."""
    for user_id in coef:
        a, b = coef[user_id]
        own_sigma = state.own_sigmas[user_id] or settings.default_scatter
        kept = [((a * r + b - t) ** 2, var_t) for r, t, var_t in points.get(user_id, [])
                if uncensored(target=t, coef=(a, b), scatter=own_sigma) and abs(a * r + b - t) < 10]
        if user_id in fitted and len(kept) >= settings.min_n:
            mean_sq = sum(sq for sq, _ in kept) / len(kept)
            state.scatters[user_id] = math.sqrt(max(mean_sq, 1.0))
            # Less the targets' own variance: what the target noise model and the fit weights need.
            state.own_sigmas[user_id] = math.sqrt(max(mean_sq - sum(v for _, v in kept) / len(kept), 1.0))
        else:
            state.scatters[user_id] = state.own_sigmas[user_id] = None
    for user_id in coef:
        s = max(state.own_sigmas[user_id] or settings.default_scatter, 1.0)
        state.weight[user_id] = 1.0 / (s * s)


def largest_change(*, old: dict[int, Coef], new: dict[int, Coef]) -> float:
    """How far any volunteer's adjusted value moved, at either end of the usable range (degrees)."""
    return max((abs((new[u][0] - old[u][0]) * x + new[u][1] - old[u][1]) for u in old for x in (50.0, 85.0)),
               default=0.0)


def fit_pass(*, votes: Votes, state: FitState, settings: FitSettings, iteration: int) -> float:
    """One pass of the fit, updating ``state``; returns how far the calibrations moved (degrees)."""
    points = leave_one_out_points(votes=votes, coef=state.coef, weight=state.weight)
    lines = shrink_slopes(fit_lines(users=votes.users, points=points, state=state, settings=settings))
    coef = invert_lines(users=votes.users, lines=lines)
    fitted = {u for u, c in coef.items() if c != IDENTITY}
    anchor_scale(coef=coef, fitted=fitted, votes=votes, state=state, settings=settings)
    if iteration > 2:
        coef = damped(old=state.coef, new=coef, fitted=fitted)
    update_scatters(state=state, coef=coef, points=points, fitted=fitted, settings=settings)
    change = largest_change(old=state.coef, new=coef)
    state.coef, state.fitted, state.points = coef, fitted, points
    return change


def consensus_weights(*, users: Iterable[int], scatters: Mapping[int, float | None],
                      default_scatter: float) -> dict[int, float]:
    """Consensus weights ∝ 1/σ, not 1/σ²: a weighted median's efficiency goes with the error density at its
    centre (∝ 1/σ), and this measured better on the simulated crowd. Normalised so a typical volunteer weighs
    1, clipped so nobody dominates a median."""
    weight = {u: 1.0 / max(scatters[u] or default_scatter, 1.0) ** 2 for u in users}
    if weight:
        typical = sorted(weight.values())[len(weight) // 2]
        weight = {u: min(max(math.sqrt(w / typical), 0.25), 4.0) for u, w in weight.items()}
    return weight


def calibrate(votes: Votes, settings: FitSettings) -> CalibrationFit:
    """Iterate :func:`fit_pass` until the calibrations settle (or ``max_iter``); every volunteer's result."""
    state = FitState.start(votes.users)
    result = CalibrationFit()
    for iteration in range(1, settings.max_iter + 1):
        result.iterations = iteration
        if fit_pass(votes=votes, state=state, settings=settings, iteration=iteration) < settings.tol:
            result.converged = True
            break
    weight = consensus_weights(users=votes.users, scatters=state.scatters, default_scatter=settings.default_scatter)
    for user_id in votes.users:
        a, b = state.coef[user_id]
        golds = votes.gold_points.get(user_id, [])
        gold_deltas = [a * r + b - t for r, t in golds]
        result.volunteers[user_id] = VolunteerFit(
            a=a, b=b, scatter=state.scatters[user_id], weight=weight[user_id],
            n=len(state.points.get(user_id, [])) if user_id in state.fitted else 0, n_gold=len(golds),
            gold_rms=math.sqrt(sum(d * d for d in gold_deltas) / len(gold_deltas)) if gold_deltas else None,
        )
    result.calibrated = len(state.fitted)
    result.identity = len(votes.users) - len(state.fitted)
    return result
