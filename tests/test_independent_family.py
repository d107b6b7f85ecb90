"""The independent evaluation family (benchmarks/independent_family): truth, determinism, rejects, isolation."""
from __future__ import annotations

import ast
import io
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.independent_family import REJECT_REASONS
from benchmarks.independent_family.model import Galaxy, render_bands, sky_grid
from benchmarks.independent_family.render import (
    draw_item,
    half_extent,
    in_ellipse,
    kinds_for,
    overhang,
    projected_axes,
    read_truth,
    render_item,
    render_set,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "benchmarks" / "independent_family"


def _moments(image: np.ndarray) -> tuple[float, float]:
    """Axis ratio and position angle (degrees CCW from +x, y up) of an image's light-weighted moments."""
    h, w = image.shape
    ys, xs = np.mgrid[0:h, 0:w]
    x = xs - (w - 1) / 2
    y = (h - 1) / 2 - ys  # y up
    f = np.clip(image, 0, None)
    t = f.sum()
    mx, my = (f * x).sum() / t, (f * y).sum() / t
    xx = (f * (x - mx) ** 2).sum() / t
    yy = (f * (y - my) ** 2).sum() / t
    xy = (f * (x - mx) * (y - my)).sum() / t
    minor, major = np.linalg.eigvalsh(np.array([[xx, xy], [xy, yy]]))
    pa = 0.5 * math.degrees(math.atan2(2 * xy, xx - yy)) % 180.0
    return math.sqrt(minor / major), pa


def _thin_disk(inclination: float, pa: float) -> Galaxy:
    return Galaxy(inclination=inclination, pa=pa, r25=3.5, hz=0.02, trunc=1.2, bt=0.0, young_frac=0.01, arms=0,
                  flocculence=0.0, bar=False, dust_tau=0.0, warp=0.0)


def _pa_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


@pytest.mark.parametrize("inclination", [0.0, 45.0, 60.0, 75.0, 85.0])
def test_thin_dust_free_disk_axis_ratio_is_cos_i(inclination: float) -> None:
    gal = _thin_disk(inclination, pa=0.0)
    x, y = sky_grid(160, 2 * gal.r25 * 2.0)
    q, _ = _moments(render_bands(gal, x, y)[..., 1])
    assert q == pytest.approx(math.cos(math.radians(inclination)), abs=0.02)


@pytest.mark.parametrize("pa", [0.0, 30.0, 95.0, 150.0])
def test_rendered_position_angle_matches_truth(pa: float) -> None:
    gal = _thin_disk(65.0, pa=pa)
    x, y = sky_grid(128, 2 * gal.r25 * 2.0)
    _, measured = _moments(render_bands(gal, x, y)[..., 1])
    assert _pa_diff(measured, pa) < 1.0


def test_full_render_keeps_position_angle_and_axis_ratio() -> None:
    """Through the whole image formation (PSF, noise, stretch, JPEG), the outer isophote of inclined clean
    galaxies points along the true PA."""
    from PIL import Image
    from scipy import ndimage

    errors = []
    for index in range(12):
        item = draw_item(11, index, "clean")
        if item.galaxy.inclination < 65:
            continue
        out = render_item(item)
        grey = np.asarray(Image.open(io.BytesIO(out["bytes"])).convert("L"), dtype=np.float64)
        grey = ndimage.gaussian_filter(grey, 1.5)
        sky = np.median(grey[:8])
        mask = grey > sky + 0.25 * (grey.max() - sky)
        labels, _ = ndimage.label(mask)
        size = grey.shape[0]
        cy = int(round(size / 2 - item.centre_px[1]))
        cx = int(round(size / 2 + item.centre_px[0]))
        region = labels == labels[cy, cx]
        _, measured = _moments(region.astype(float))
        errors.append(_pa_diff(measured, out["truth"]["pa"]))
    assert errors and float(np.median(errors)) < 4.0 and max(errors) < 15.0


def test_same_seed_same_set_for_any_number_of_workers(tmp_path: Path) -> None:
    one = render_set(tmp_path / "a", n=3, rejects=2, seed=5, workers=1)
    two = render_set(tmp_path / "b", n=3, rejects=2, seed=5, workers=2)
    assert one == two
    for row in one:
        assert (tmp_path / "a" / row["file"]).read_bytes() == (tmp_path / "b" / row["file"]).read_bytes()
    assert (tmp_path / "a" / "truth.csv").read_text() == (tmp_path / "b" / "truth.csv").read_text()
    other = render_set(tmp_path / "c", n=3, rejects=2, seed=6, workers=1)
    assert [r["inclination"] for r in other] != [r["inclination"] for r in one]
    rows = read_truth(tmp_path / "a")
    assert len(rows) == 5 and sum(not r["accepted"] for r in rows) == 2


def test_every_reject_kind_is_drawn_with_its_truth() -> None:
    kinds = kinds_for(10, 10, seed=1)
    assert {k for k in kinds if k != "clean"} == set(REJECT_REASONS) and kinds.count("clean") == 10
    for index, reason in enumerate(REJECT_REASONS):
        item = draw_item(3, index, reason)
        gal, size = item.galaxy, item.obs.size
        r25_px = size / (2 * item.fov_d25)
        a, b = projected_axes(gal, r25_px)
        hx, hy = half_extent(a, b, gal.pa)
        if reason == "face_on":
            assert gal.inclination < 45
        else:
            assert 45 <= gal.inclination <= 90
        if reason == "cut_off":
            assert overhang(size, item.centre_px, hx, hy) > 0.2 * r25_px
        if reason == "bright_star":
            x, y, flux = item.obs.stars[-1][:3]
            assert in_ellipse(x, y, item.centre_px, a, b, gal.pa, 1.0) and flux > 0.03
        if reason == "companion":
            cx, cy = item.companion_centre_px
            assert item.companion is not None
            assert math.hypot(cx - item.centre_px[0], cy - item.centre_px[1]) < a + item.companion_scale * r25_px
        if reason == "low_snr":
            assert item.obs.snr25 < 0.35
        out = render_item(item)
        assert out["truth"]["reason"] == reason and not out["truth"]["accepted"]
        assert out["display"].dtype == np.uint8 and out["display"].shape[:2] == (size, size)


def test_clean_galaxies_fit_in_the_frame_with_no_bright_star_on_the_disk() -> None:
    for index in range(20):
        item = draw_item(4, index, "clean")
        gal, size = item.galaxy, item.obs.size
        r25_px = size / (2 * item.fov_d25)
        a, b = projected_axes(gal, r25_px)
        hx, hy = half_extent(a, b, gal.pa)
        assert 45 <= gal.inclination <= 90 and item.obs.snr25 >= 1.0
        assert overhang(size, item.centre_px, hx, hy) <= -0.03 * size + 1e-6
        for x, y, flux, *_ in item.obs.stars:
            assert flux <= 3e-3 or not in_ellipse(x, y, item.centre_px, a, b, gal.pa, 1.25)


def test_reject_vocabulary_matches_the_project() -> None:
    tree = ast.parse((ROOT / "core" / "synthetic" / "config.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "REJECT_REASONS":
            assert set(ast.literal_eval(node.value)) == set(REJECT_REASONS)
            return
    raise AssertionError("REJECT_REASONS not found in core/synthetic/config.py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# Evaluation at promotion may use the family, training never. The one module under training/ allowed to import
# it (through benchmarks.independent_accuracy) judges a finished ensemble; the training core (training/ml) and
# every other module — the pipeline, snapshots, tasks, services — may neither import benchmarks nor mention it.
EVALUATION_ONLY = {"training/independent_services.py"}


def test_training_code_never_imports_the_independent_family() -> None:
    files = [p for p in [*(ROOT / "training").rglob("*.py"), *(ROOT / "core").rglob("*.py")]
             if str(p.relative_to(ROOT)) not in EVALUATION_ONLY]
    offenders = [str(path.relative_to(ROOT)) for path in files
                 if any(name.startswith("benchmarks") for name in _imports(path))]
    assert not offenders
    texts = [p for p in files if "independent_family" in p.read_text()]
    assert not texts


def test_the_training_core_never_reaches_the_promotion_check() -> None:
    """training/ml and core (generation, augmentation, training, the pipeline) cannot even reach the evaluation
    module."""
    core = [*(ROOT / "training" / "ml").rglob("*.py"), *(ROOT / "core").rglob("*.py")]
    assert core
    for path in core:
        names = _imports(path)
        assert not any(n.startswith("benchmarks") or n.endswith("independent_services") for n in names), path
        assert "independent_services" not in path.read_text(), path
    # and the allowed module really is the only one that imports it
    assert any(n.startswith("benchmarks") for n in _imports(ROOT / "training" / "independent_services.py"))


def test_the_family_imports_neither_training_code_nor_galsim() -> None:
    for path in PACKAGE.rglob("*.py"):
        names = _imports(path)
        assert not any(n.split(".")[0] in {"training", "core", "galsim", "predictions", "catalog", "django"}
                       for n in names), path


# --- the benchmark (benchmarks/independent_accuracy.py) ----------------------------------------

def test_summary_statistics() -> None:
    from benchmarks.independent_accuracy import markdown_row, summarise

    rows = [{"inclination": 60.0, "accepted": True, "reason": "", "pa": 10.0},
            {"inclination": 80.0, "accepted": True, "reason": "", "pa": 100.0},
            {"inclination": 20.0, "accepted": False, "reason": "face_on", "pa": 0.0},
            {"inclination": 70.0, "accepted": False, "reason": "cut_off", "pa": 0.0}]
    results = [{"median": 62.0, "reject": 10.0, "axial": 66.0, "alarm": False, "pa_measured": 10.0 - 90.0 + 180.0},
               {"median": 76.0, "reject": 60.0, "axial": float("nan"), "alarm": True, "pa_measured": 14.0},
               {"median": 50.0, "reject": 90.0, "axial": 30.0, "alarm": False, "pa_measured": None},
               {"median": 70.0, "reject": 20.0, "axial": 70.0, "alarm": False, "pa_measured": None}]
    out = summarise(rows, results)
    clean = out["clean"]
    assert clean["n"] == 2
    assert clean["ensemble"]["rms"] == pytest.approx(math.sqrt((4 + 16) / 2))
    assert clean["ensemble"]["bias"] == pytest.approx(-1.0)
    assert clean["axial_ratio"]["n"] == 1 and clean["axial_ratio"]["failed"] == 1
    assert clean["axial_over_ensemble_rms"] == pytest.approx(6.0 / 2.0)
    assert clean["rejected_fraction"] == 0.5
    assert out["rejects"]["recall"] == 0.5
    assert out["rejects"]["by_reason"]["face_on"]["recall"] == 1.0
    assert out["rejects"]["by_reason"]["cut_off"]["recall"] == 0.0
    assert out["rejects"]["axial_face_on_recall"] == 1.0
    assert out["pa"]["n_measured"] == 2 and out["pa"]["median_error"] == pytest.approx(2.0)
    report = {**out, "ensemble": {"version": "v"}, "alignment": "measured by the serving path", "real_photos": None}
    assert markdown_row(report).startswith("| v | measured by the serving path | 2 |")


@pytest.mark.django_db
def test_benchmark_runs_through_the_serving_path(tmp_path: Path, settings) -> None:  # noqa: ANN001
    from benchmarks.independent_accuracy import evaluate_independent, markdown_report
    from tests.ensembles import write_tiny_ensemble

    images = tmp_path / "set"
    render_set(images, n=3, rejects=5, seed=9, workers=1)
    folder = tmp_path / "ens"
    write_tiny_ensemble(folder, version="tiny-ind", families=1, flavours=2)
    store_before = settings.MODEL_STORE
    report = evaluate_independent(folder, images, real_photos=None)
    assert settings.MODEL_STORE == store_before  # the temporary model store is gone again
    assert report["ensemble"]["version"] == "tiny-ind"
    assert report["set"]["n_images"] == 8 and report["clean"]["n"] == 3
    assert report["clean"]["ensemble"]["n"] == 3 and report["clean"]["ensemble"]["rms"] is not None
    assert set(report["rejects"]["by_reason"]) == set(REJECT_REASONS)
    assert report["alignment"].startswith("measured") or report["alignment"].startswith("none")
    assert any("RMS" in line for line in markdown_report(report))
