"""Ensembles for tests, smoke checks and benchmarks, written as real ensemble folders (manifest + .keras).

``write_tiny_ensemble``: tiny untrained networks that exercise the serving path (manifest, fused graph, TTA,
registry) without the cost of model4/5/6. ``write_full_ensemble``: the original 12 + 3 layout with the
real architectures and random weights, for speed and precision measurements (about 60 GFLOP per view).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest, MemberSpec


def tiny_network(*, kind: str, seed: int, input_shape: tuple[int, int, int] = (128, 128, 3)):  # noqa: ANN201
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="tanh")(x) if kind == "regression" else keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def write_tiny_ensemble(folder: Path, *, version: str = "tiny-1", families: int = 3, flavours: int = 4,
                        rejects: bool = True) -> EnsembleManifest:
    """An ensemble with the original's naming (model4, model41.., model4-binary) of tiny networks."""
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for group in range(families):
        family = f"model{4 + group}"
        for flavour in range(flavours):
            name = family if flavour == 0 else f"{family}{flavour}"
            tiny_network(kind="regression", seed=100 * group + flavour).save(folder / f"{name}.keras")
            members.append(MemberSpec(name=name, architecture="tiny", flavour=flavour, kind="regression",
                                      file=f"{name}.keras", group=group))
        if not rejects:
            continue
        tiny_network(kind="reject", seed=1000 + group).save(folder / f"{family}-binary.keras")
        members.append(MemberSpec(name=f"{family}-binary", architecture="tiny", flavour=0, kind="reject",
                                  file=f"{family}-binary.keras", group=group))
    manifest = EnsembleManifest(version=version, members=tuple(members),
                                preprocessing={"input": "uint8 RGB 128x128, scaled inside the model"})
    (folder / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def random_galaxy_images(n: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 128, 128, 3), dtype=np.uint8)


def write_full_ensemble(folder: Path, *, version: str = "full-random", seed: int = 0,
                        architectures: tuple[str, ...] = ("model4", "model5", "model6"),
                        flavours: int = 4) -> EnsembleManifest:
    """The original's ensemble with random (untrained) weights: each architecture × ``flavours`` regression
    networks plus one binary reject network each, named model4, model41.., model4-binary.

    Batch-normalisation statistics are randomised too (fresh layers are identities there), so the bf16
    path is compared with fp32 on a network whose every layer does work.
    """
    import keras

    from training.ml.architectures import build_model

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    members = []
    for group, family in enumerate(architectures):
        specs = [(family if flavour == 0 else f"{family}{flavour}", "regression", flavour) for flavour in range(flavours)]
        specs.append((f"{family}-binary", "reject", 0))
        for index, (name, kind, flavour) in enumerate(specs):
            keras.utils.set_random_seed(seed + 1000 * group + index)
            model = build_model(family, binary=kind == "reject")
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    gamma, beta, mean, variance = layer.get_weights()
                    layer.set_weights([
                        rng.uniform(0.8, 1.2, gamma.shape).astype("float32"),
                        rng.normal(0.0, 0.1, beta.shape).astype("float32"),
                        rng.normal(0.0, 0.1, mean.shape).astype("float32"),
                        rng.uniform(0.5, 2.0, variance.shape).astype("float32"),
                    ])
            model.save(folder / f"{name}.keras")
            members.append(MemberSpec(name=name, architecture=family, flavour=flavour, kind=kind,
                                      file=f"{name}.keras", group=group))
    manifest = EnsembleManifest(version=version, members=tuple(members),
                                preprocessing={"input": "uint8 RGB 128x128, scaled inside the model"})
    (folder / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest
