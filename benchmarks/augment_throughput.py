"""Does the on-the-fly augmentation keep up with training? Measures, in one run on this machine:

1. the ``tf.data`` augmentation pipeline alone (images/s);
2. per architecture, training on batches already in memory (images/s the model can consume);
3. per architecture, training fed live by the pipeline (what a real epoch gets).

The pipeline keeps up when (1) is well above (2) and (3) is close to (2). On a CPU both compete for the
same cores, so (3) is always a little below (2); on a GPU the pipeline runs on the CPU alongside.

Run: ``nice python -m benchmarks.augment_throughput`` (about 1–2 minutes on 2 idle cores; model5 gets few
steps because it needs ~15× model6's compute). ``--json out.json`` also writes the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from training.ml.augment import ImageSet, make_training_dataset  # noqa: E402
from training.ml.scaling import INPUT_SHAPE  # noqa: E402

# (architecture, batch size, timed steps); one extra step first pays for tracing.
DEFAULT_PLAN = (("model4", 64, 8), ("model6", 64, 5), ("model5", 16, 2))


def fake_galaxies(n: int, size: int, seed: int = 0) -> ImageSet:
    """Noisy elliptical blobs at random inclinations: realistic enough for timing, instant to make."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    inclination = rng.uniform(45, 90, n)
    q = np.maximum(np.cos(np.radians(inclination)), 0.15)
    radius = rng.uniform(0.1, 0.25, n) * size
    profile = np.exp(-np.sqrt((x[None] / radius[:, None, None]) ** 2 + (y[None] / (q * radius)[:, None, None]) ** 2))
    bands = [np.clip(220 * profile * rng.uniform(0.7, 1.0, (n, 1, 1)) + rng.normal(12, 4, (n, size, size)), 0, 255)
             for _ in range(3)]
    g, r, i = (b.astype(np.uint8) for b in bands)
    return ImageSet(colour=np.stack([i, r, g], axis=-1), g=g, r=r, i=i, labels=inclination)


def pipeline_rate(images: ImageSet, *, batch_size: int, batches: int) -> float:
    dataset = make_training_dataset(images, batch_size=batch_size, steps=batches + 1, seed=1)
    iterator = iter(dataset)
    next(iterator)  # tracing and the first batch are not throughput
    start = time.perf_counter()
    count = sum(int(x.shape[0]) for x, _ in iterator)
    return count / (time.perf_counter() - start)


def training_rates(name: str, images: ImageSet, *, batch_size: int, steps: int) -> dict[str, float]:
    import keras

    from training.ml.architectures import build_model

    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=images.image_shape)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    x, y = next(iter(make_training_dataset(images, batch_size=batch_size, steps=1, seed=2)))
    model.train_on_batch(x, y)  # trace

    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    in_memory = steps * batch_size / (time.perf_counter() - start)

    live = iter(make_training_dataset(images, batch_size=batch_size, steps=steps + 1, seed=3))
    model.train_on_batch(*next(live))  # the pipeline's own warm-up
    start = time.perf_counter()
    for xb, yb in live:
        model.train_on_batch(xb, yb)
    fed = steps * batch_size / (time.perf_counter() - start)
    return {"in_memory": in_memory, "fed_by_pipeline": fed}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64, help="pipeline batch size")
    parser.add_argument("--batches", type=int, default=12, help="timed pipeline batches")
    parser.add_argument("--models", default=",".join(name for name, _, _ in DEFAULT_PLAN),
                        help="comma-separated subset of model4,model6,model5,compact")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the timed training steps")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import tensorflow as tf

    images = fake_galaxies(args.galaxies, INPUT_SHAPE[0])
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    print(f"device: {device}; images {INPUT_SHAPE}, {args.galaxies} galaxies")
    results: dict[str, Any] = {"device": device, "pipeline_images_per_s": pipeline_rate(
        images, batch_size=args.batch, batches=args.batches)}
    print(f"augmentation pipeline alone: {results['pipeline_images_per_s']:.0f} images/s (batch {args.batch})")

    plan = {name: (batch, steps) for name, batch, steps in (*DEFAULT_PLAN, ("compact", 64, 8))}
    results["training"] = {}
    print(f"{'model':8} {'batch':>5} {'steps':>5} {'in-memory img/s':>16} {'fed live img/s':>15} "
          f"{'pipeline/train':>15} {'live/in-memory':>15}")
    for name in args.models.split(","):
        batch, steps = plan[name]
        steps = max(1, round(steps * args.steps_scale))
        rates = training_rates(name, images, batch_size=batch, steps=steps)
        headroom = results["pipeline_images_per_s"] / rates["in_memory"]
        efficiency = rates["fed_by_pipeline"] / rates["in_memory"]
        results["training"][name] = {**rates, "batch": batch, "steps": steps, "pipeline_headroom": headroom,
                                     "live_efficiency": efficiency}
        print(f"{name:8} {batch:5d} {steps:5d} {rates['in_memory']:16.1f} {rates['fed_by_pipeline']:15.1f} "
              f"{headroom:14.1f}x {efficiency:14.0%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
