"""A small ensemble that *sees orientation*, for rotation-invariance tests of the serving path.

The tiny random networks of ``tests.ensembles`` answer almost the same for any image, so a test with
them could not fail. Each member here compares the image's mean horizontal and vertical gradient
strength (fixed-weight convolutions, then a tanh or softmax head), as trained networks that have only
seen horizontal major axes implicitly do: a disk turned by 45° changes its answer by tens of degrees.
The manifest asks for the ``aligned`` test-time views (0°, 180°, both flipped), as the real ensembles do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest, MemberSpec


def _probe(kind: str, gain: float):  # noqa: ANN202 - keras.Model, imported lazily
    import keras

    inputs = keras.Input(shape=(128, 128, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=False)
    x = conv(x)
    kernel = np.zeros((3, 3, 3, 4), dtype=np.float32)
    dx = np.array([[0, 0, 0], [-1, 0, 1], [0, 0, 0]], dtype=np.float32) / 3  # per channel, averaged
    for c in range(3):
        kernel[:, :, c, 0], kernel[:, :, c, 1] = dx, -dx  # |d/dx| as relu(+) + relu(−)
        kernel[:, :, c, 2], kernel[:, :, c, 3] = dx.T, -dx.T  # |d/dy|
    conv.set_weights([kernel])
    x = keras.layers.GlobalAveragePooling2D()(x)
    if kind == "regression":
        head = keras.layers.Dense(1, activation="tanh")
        out = head(x)
        head.set_weights([np.array([[gain], [gain], [-gain], [-gain]], dtype=np.float32), np.array([0.3], np.float32)])
    else:
        head = keras.layers.Dense(2, activation="softmax")
        out = head(x)
        w = np.array([[gain, -gain], [gain, -gain], [-gain, gain], [-gain, gain]], dtype=np.float32)
        head.set_weights([w, np.zeros(2, np.float32)])
    return keras.Model(inputs, out)


def write_probe_ensemble(folder: Path, *, version: str = "probe-1") -> EnsembleManifest:
    """model4, model41 (gains 60 and 90) and model4-binary, tta ``aligned``."""
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for flavour, gain in enumerate((60.0, 90.0)):
        name = "model4" if flavour == 0 else f"model4{flavour}"
        _probe("regression", gain).save(folder / f"{name}.keras")
        members.append(MemberSpec(name=name, architecture="probe", flavour=flavour, kind="regression",
                                  file=f"{name}.keras", group=0))
    _probe("reject", 120.0).save(folder / "model4-binary.keras")
    members.append(MemberSpec(name="model4-binary", architecture="probe", flavour=0, kind="reject",
                              file="model4-binary.keras", group=0))
    manifest = EnsembleManifest(version=version, members=tuple(members), tta="aligned",
                                preprocessing={"input": "uint8 RGB 128x128, scaled inside the model"})
    (folder / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest
