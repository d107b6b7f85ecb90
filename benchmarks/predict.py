"""Prediction benchmark: the original's way (15 separate Keras models, ``predict`` on 2 views each) against
our fused ensemble, on the full 12 + 3 architecture with random weights, all measured in one run.

Reports, on this machine and under whatever else it is running (the baseline shares the same load):

* FLOPs per image per view, counted from the layer shapes (2 × multiply-adds of the convolutions and dense
  layers; pooling, BN and activations are < 0.5 % and left out);
* server-side latency of ``POST /api/file`` (Django's test client in-process: request parsing, image
  decoding and alignment, the ensemble, the stored model-input PNG and the JSON; no network), p50 and p90
  over distinct images so the prediction cache never answers, for: the baseline, fused fp32 and fused bf16
  with the same 2 views, and the production setting (manifest TTA, precision ``auto``);
* batch throughput (images/s, 2 views and production TTA) with the achieved GFLOP/s as a fraction of this
  CPU's FP32 peak (cores × AVX-512 FMA units × 16 lanes × 2 × clock; see ``--fma-units``/``--ghz``), and a
  measured fp32 matmul as the attainable ceiling in this run;
* the RMS change of the inclinations from fp32 to bf16 on the same images (bound: 0.1°).

Usage: ``.venv/bin/python benchmarks/predict.py`` (about 5 minutes on 2 cores), ``--quick`` (about 2),
``--markdown`` to print the docs table too.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")

from tests.ensembles import write_full_ensemble  # noqa: E402
from training.ml.ensemble import (  # noqa: E402
    BF16_RMS_BOUND_DEG,
    TTA_VIEWS,
    EnsembleManifest,
    FusedEnsemble,
    resolve_precision,
)


class SeparateModelsEnsemble(FusedEnsemble):
    """The original's inference: every member a separate Keras model, each with its own ``predict`` call on
    the batch of views (0° and 180°), in fp32. Same manifest, medians and summaries as ours."""

    def __init__(self, folder: Path, *, tta: str = "2") -> None:  # noqa: D107 - no fused graph to build
        self.folder = folder
        self.manifest = EnsembleManifest.load(folder)
        self.tta = tta
        self.precision = "fp32"
        self.members = self._load_members()

    def raw_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(member.predict(images, verbose=0)) for member in self.members]


# --- machine ----------------------------------------------------------------------------------------------

def cpu_info() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            fields.setdefault(key, value)
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", platform.processor()),
        "cores": os.cpu_count() or 1,
        "mhz": float(fields.get("cpu MHz", "0") or 0),
        "avx512": "avx512f" in flags,
        "bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "vnni": sorted(flags & {"avx512_vnni", "amx_int8"}),
        "load": os.getloadavg(),
    }


def matmul_gflops(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    """Attainable dense throughput in this run: TensorFlow n×n matmuls (oneDNN)."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    b = tf.random.normal((n, n), dtype=tf.float32)
    if dtype == "bf16":
        a, b = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# --- FLOPs ------------------------------------------------------------------------------------------------

def model_flops(model: Any) -> int:  # noqa: ANN401 - keras.Model
    """2 × multiply-adds of Conv2D, SeparableConv2D and Dense layers for one 128×128 view."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += 2 * h * w * (kh * kw * c_in + c_in * c_out)
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


# --- measurements -----------------------------------------------------------------------------------------

def galaxy_png(seed: int) -> bytes:
    """A distinct 256×256 RGB image per seed (an inclined exponential disk plus noise), so every request
    misses the prediction cache; content does not matter for speed."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-128:128, -128:128].astype(np.float32)
    angle, ratio = rng.uniform(0, np.pi), rng.uniform(0.2, 1.0)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / ratio
    disk = 230 * np.exp(-np.hypot(u, v) / rng.uniform(15, 40))
    pixels = np.clip(disk[..., None] + rng.normal(12, 6, (256, 256, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def api_latencies(engine: FusedEnsemble, *, repeats: int, seed: int) -> list[float]:
    """Server-side seconds per ``POST /api/file`` with ``engine`` as the active ensemble (first call, which
    traces the graph, excluded)."""
    from django.test import Client
    from django.urls import reverse

    from predictions import api, services

    # The view's routes to the model: the pointer it checks before any work (issue 16), the one the cache key
    # reads, and the ensemble itself.
    api.active_pointer = services.active_pointer = lambda: {"version": engine.version, "folder": "benchmark"}
    services.active_ensemble = lambda: engine
    client = Client()
    times = []
    for index in range(repeats + 1):
        upload = io.BytesIO(galaxy_png(seed + index))
        upload.name = f"galaxy{index}.png"
        start = time.perf_counter()
        response = client.post(reverse("api-file"), {"file": upload})
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"/api/file answered {response.status_code}: {response.content[:300]!r}")
        if index:
            times.append(elapsed)
    return times


def batch_seconds(engine: FusedEnsemble, images: np.ndarray, *, repeats: int) -> tuple[float, float]:
    """Best (wall seconds, process CPU seconds) of ``repeats`` runs on the batch.

    CPU seconds count only the time the OS gave this process's threads, so FLOPs per CPU-second stay
    meaningful when other work shares the cores (threads that spin while waiting count too, so it errs low).
    """
    engine.predict(images[:2])  # trace
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        engine.predict(images)
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu_start))
    return best


def inclinations(engine: FusedEnsemble, images: np.ndarray) -> np.ndarray:
    """(members, images) served inclinations in degrees, plus the ensemble median as the last row."""
    predictions = engine.predict(images)
    rows = [[p.members[m.name].inclination for p in predictions] for m in engine.manifest.regression]
    rows.append([p.inclination_median for p in predictions])
    return np.array(rows, dtype=np.float64)


# --- main -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)

    import django

    django.setup()
    from rest_framework.throttling import SimpleRateThrottle

    # The anonymous throttle (120/min) would refuse a fast engine's requests; it is not what is measured.
    SimpleRateThrottle.allow_request = lambda self, request, view: True  # type: ignore[method-assign]

    cpu = cpu_info()
    ghz = args.ghz or cpu["mhz"] / 1000
    peak = cpu["cores"] * args.fma_units * 16 * 2 * ghz
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, AVX-512 {cpu['avx512']}, bf16 {cpu['bf16']}, "
          f"int8 {cpu['vnni']}; load average at start {cpu['load'][0]:.2f}")
    print(f"FP32 peak assumed: {cpu['cores']} cores × {args.fma_units} FMA units × 16 lanes × 2 × {ghz:.2f} GHz "
          f"= {peak:.0f} GFLOP/s")

    with tempfile.TemporaryDirectory(prefix="inclinet-bench-") as tmp:
        root = Path(tmp)
        folder = root / "model_store" / "ensembles" / "full-random"
        started = time.perf_counter()
        manifest = write_full_ensemble(folder)
        print(f"wrote the 12 + 3 ensemble (random weights) in {time.perf_counter() - started:.0f} s")
        per_view = _flops_per_view(manifest)

        matmul_fp32 = matmul_gflops("fp32")
        matmul_bf16 = matmul_gflops("bf16")
        print(f"TF matmul 2048²: fp32 {matmul_fp32:.0f} GFLOP/s ({matmul_fp32 / peak:.0%} of peak), "
              f"bf16 {matmul_bf16:.0f} GFLOP/s")
        production_tta, production_precision = manifest.tta, resolve_precision("auto")
        engines: list[tuple[str, Callable[[], FusedEnsemble], str]] = [
            ("baseline: 15 × model.predict, fp32", lambda: SeparateModelsEnsemble(folder, tta="2"), "2"),
            ("fused fp32", lambda: FusedEnsemble(folder, tta="2", precision="fp32"), "2"),
            ("fused bf16", lambda: FusedEnsemble(folder, tta="2", precision="bf16"), "2"),
            (f"production: fused {production_precision}, TTA {production_tta}",
             lambda: FusedEnsemble(folder, tta=production_tta, precision=production_precision), production_tta),
        ]
        rng = np.random.default_rng(1)
        batch_images = rng.integers(0, 256, size=(args.batch, 128, 128, 3), dtype=np.uint8)
        results, reference = _measure_engines(engines, root, batch_images, args, per_view=per_view, peak=peak,
                                              cores=cpu["cores"])
    _report(results, reference, args)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="timed /api/file requests per engine")
    parser.add_argument("--batch", type=int, default=16, help="images per throughput batch")
    parser.add_argument("--batch-repeats", type=int, default=2, help="throughput runs (best counts)")
    parser.add_argument("--quick", action="store_true", help="--repeats 4 --batch 8 --batch-repeats 1")
    parser.add_argument("--fma-units", type=int, default=2, help="AVX-512 FMA units per core (Zen 4/Xeon: 2)")
    parser.add_argument("--ghz", type=float, default=None, help="clock for the peak (default: /proc/cpuinfo)")
    parser.add_argument("--markdown", action="store_true", help="also print the docs/benchmarks.md rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.batch, args.batch_repeats = 4, 8, 1
    return args


def _flops_per_view(manifest: EnsembleManifest) -> int:
    """FLOPs of the whole ensemble on one view, from each architecture's layer shapes (printed per family)."""
    import keras

    from training.ml.architectures import build_model

    flops = {name: model_flops(build_model(name)) for name in ("model4", "model5", "model6")}
    per_view = sum(flops[m.architecture] for m in manifest.members)
    model5_share = sum(flops[m.architecture] for m in manifest.members if m.architecture == "model5") / per_view
    print("GFLOP per view: " + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flops.items())
          + f"; ensemble {per_view / 1e9:.1f} (model5 share {model5_share:.0%})")
    keras.backend.clear_session()
    return per_view


def _measure_engines(engines: list[tuple[str, Callable[[], FusedEnsemble], str]], root: Path,
                     batch_images: np.ndarray, args: argparse.Namespace, *, per_view: int, peak: float,
                     cores: int) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Each engine in turn: /api/file latencies and batch throughput (one result row each), and the fused
    2-view engines' inclinations on the batch by precision (for the bf16 check)."""
    import keras
    from django.test.utils import override_settings

    results = []
    reference: dict[str, np.ndarray] = {}
    settings_override = override_settings(
        MODEL_STORE=root / "model_store", MEDIA_ROOT=root / "media",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    )
    with settings_override:
        for index, (name, build, tta) in enumerate(engines):
            engine = build()
            times = api_latencies(engine, repeats=args.repeats, seed=1000 * index)
            seconds, cpu_seconds = batch_seconds(engine, batch_images, repeats=args.batch_repeats)
            views = len(TTA_VIEWS[tta])
            flop = args.batch * views * per_view
            gflops = flop / seconds / 1e9
            per_cpu_second = flop / cpu_seconds / 1e9  # comparable with one core's peak
            row = {"engine": name, "tta": tta, "p50": percentile(times, 50), "p90": percentile(times, 90),
                   "images_s": args.batch / seconds, "gflops": gflops, "peak": gflops / peak,
                   "cpu_gflops": per_cpu_second, "cpu_peak": per_cpu_second / (peak / cores)}
            results.append(row)
            print(f"{name:45s} TTA {tta}: /api/file p50 {row['p50'] * 1000:7.0f} ms  p90 {row['p90'] * 1000:7.0f} ms"
                  f" | batch {args.batch}: {row['images_s']:6.2f} images/s, {gflops:5.0f} GFLOP/s "
                  f"({row['peak']:.0%} of FP32 peak); {per_cpu_second:5.0f} GFLOP per CPU-second "
                  f"({row['cpu_peak']:.0%} of one core's FP32 peak)", flush=True)
            if tta == "2" and isinstance(engine, FusedEnsemble) and not isinstance(engine, SeparateModelsEnsemble):
                reference[engine.precision] = inclinations(engine, batch_images)
            del engine
            keras.backend.clear_session()
    return results, reference


def _report(results: list[dict[str, Any]], reference: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    """Speed-ups over the baseline, the bf16 change of the inclinations and, with --markdown, the docs table."""
    baseline = results[0]["p50"]
    print("\nspeed-up of /api/file p50 over the baseline (same 2 views):")
    for row in results[1:]:
        print(f"  {row['engine']:45s} {baseline / row['p50']:.1f}×")
    difference = reference["bf16"] - reference["fp32"]
    member_rms = float(np.sqrt(np.mean(difference[:-1] ** 2)))
    median_rms = float(np.sqrt(np.mean(difference[-1] ** 2)))
    print(f"bf16 vs fp32 on {args.batch} images: RMS change {member_rms:.3f}° per member, {median_rms:.3f}° for the "
          f"ensemble median, max {np.abs(difference).max():.3f}° (bound {BF16_RMS_BOUND_DEG}°)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")

    if args.markdown:
        print("\n| engine | TTA views | /api/file p50 | p90 | speed-up (p50) | batch images/s | GFLOP/s (wall) "
              "| of FP32 peak | GFLOP per CPU-s | of 1-core peak |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in results:
            print(f"| {row['engine']} | {row['tta']} | {row['p50'] * 1000:.0f} ms | {row['p90'] * 1000:.0f} ms | "
                  f"{baseline / row['p50']:.1f}× | {row['images_s']:.2f} | {row['gflops']:.0f} | {row['peak']:.0%} | "
                  f"{row['cpu_gflops']:.0f} | {row['cpu_peak']:.0%} |")


if __name__ == "__main__":
    raise SystemExit(main())
