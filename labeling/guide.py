"""The field guide's example images: drawn galaxies showing inclinations, face-on and each reject reason.

They are rendered on request from ``synthetic.render_sketch_png`` (deterministic, a few milliseconds each), so no
generated image is kept in git. Used by the field guide page, the tutorial's lessons and its reject question.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .synthetic import render_sketch_png

SIZE = 192


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    text: str
    reason: str = ""  # the reject reason it illustrates, if any


INCLINATION_EXAMPLES = (
    Example("inc-20", "Face-on (about 20°)", "Round: you look down onto the disc. Use \"Face-on (< 45°)\"."),
    Example("inc-50", "50°", "Clearly oval; the spiral arms are still easy to follow."),
    Example("inc-65", "65°", "About twice as long as wide; the far side of the disc is foreshortened."),
    Example("inc-80", "80°", "A thin lens; arms are hard to see, a dust lane may cross the bulge."),
    Example("inc-90", "Edge-on (90°)", "A needle: the disc seen exactly from its side."),
)

REJECT_EXAMPLES = (
    Example("reject-multiple", "Multiple objects", "Two or more galaxies overlap or a bright star sits on "
            "the disc, so the shape is not one galaxy's.", "multiple"),
    Example("reject-not_spiral", "Not a spiral", "A smooth elliptical or lenticular without a disc and arms.",
            "not_spiral"),
    Example("reject-disturbed", "Disturbed", "Warped, tidally stretched or lopsided: its outline does not "
            "show its inclination.", "disturbed"),
    Example("reject-better_image", "Needs a better image", "Cut by the image edge, too noisy or too small to "
            "judge.", "better_image"),
    Example("reject-ambiguous", "Ambiguous", "You can read it two ways, e.g. a bar or a ring that looks like "
            "a tilted disc.", "ambiguous"),
    Example("reject-bad_TF", "Not a good TF galaxy", "An irregular or dwarf galaxy without an ordered disc: "
            "useless for the Tully-Fisher relation.", "bad_TF"),
    Example("reject-HI", "Bad HI / confused", "A close neighbour of similar size would blend into the "
            "radio (HI) beam.", "HI"),
    Example("reject-not_sure", "Not sure, use b/a", "You cannot place it with confidence; the axis ratio "
            "from the catalogue will be used instead.", "not_sure"),
)

EXAMPLES = {e.name: e for e in (*INCLINATION_EXAMPLES, *REJECT_EXAMPLES)}


def _galaxy(inclination: float, *, seed: int = 3, morphology: str = "Sb", size: int = SIZE) -> Image.Image:
    return Image.open(io.BytesIO(render_sketch_png(inclination=inclination, size=size, seed=seed,
                                                   morphology=morphology))).convert("RGB")


def _add(base: Image.Image, other: Image.Image, offset: tuple[int, int]) -> Image.Image:
    """Light adds up: paste ``other`` at ``offset`` by summing pixel values."""
    canvas = np.asarray(base, dtype=np.int32).copy()
    layer = np.zeros_like(canvas)
    x, y = offset
    part = np.asarray(other, dtype=np.int32)
    h, w = part.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    layer[y0:y1, x0:x1] = part[y0 - y:y1 - y, x0 - x:x1 - x]
    return Image.fromarray(np.clip(canvas + layer, 0, 255).astype(np.uint8), "RGB")


def _render(name: str) -> Image.Image:
    if name.startswith("inc-"):
        return _galaxy(float(name[4:]), seed=int(name[4:]))
    if name == "reject-multiple":
        return _add(_galaxy(62, seed=5).resize((150, 150)).crop((-20, -20, 172, 172)),
                    _galaxy(70, seed=9, morphology="Sc").resize((110, 110)).rotate(50), (70, 70))
    if name == "reject-not_spiral":
        y, x = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j]
        light = 0.05 * np.exp(-7.67 * ((np.hypot(x / 0.75, y / 0.55) / 0.3) ** 0.25 - 1))  # de Vaucouleurs
        grey = np.clip(np.arcsinh(light / 0.02) / np.arcsinh(1 / 0.02), 0, 1)
        rgb = np.stack([grey, grey * 0.82, grey * 0.62], axis=-1)
        return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
    if name == "reject-disturbed":
        pixels = np.asarray(_galaxy(70, seed=11), dtype=np.float64)
        shifted = np.empty_like(pixels)
        for row in range(SIZE):  # a tidal S-warp: rows slide sideways, more towards the edges
            shift = int(40 * np.sin((row / SIZE - 0.5) * np.pi) ** 3)
            shifted[row] = np.roll(pixels[row], shift, axis=0)
        return Image.fromarray(shifted.astype(np.uint8), "RGB").rotate(25)
    if name == "reject-better_image":
        noisy = np.asarray(_galaxy(60, seed=13), dtype=np.float64)
        noisy = noisy + np.random.default_rng(1).normal(0, 70, noisy.shape)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
        return image.crop((70, 0, 70 + SIZE, SIZE))
    if name == "reject-ambiguous":
        return _galaxy(35, seed=17, morphology="Sa").filter(ImageFilter.GaussianBlur(3))
    if name == "reject-bad_TF":
        rng = np.random.default_rng(19)
        canvas = Image.new("RGB", (SIZE, SIZE))
        for _ in range(6):
            blob = _galaxy(float(rng.uniform(10, 60)), seed=int(rng.integers(100)), morphology="Sd").resize((60, 60))
            canvas = _add(canvas, Image.eval(blob, lambda v: v // 2), (int(rng.integers(40, 100)), int(rng.integers(40, 100))))
        return canvas
    if name == "reject-HI":
        return _add(_galaxy(68, seed=21).resize((130, 130)).crop((-10, -30, 182, 162)),
                    _galaxy(75, seed=23, morphology="Sc").resize((100, 100)).rotate(-30), (95, 100))
    if name == "reject-not_sure":
        return _galaxy(48, seed=29, morphology="Sd").filter(ImageFilter.GaussianBlur(1.5))
    raise KeyError(name)


def example_png(name: str) -> bytes:
    """The example image ``name`` (a key of EXAMPLES) as a PNG; KeyError for an unknown name."""
    if name not in EXAMPLES:
        raise KeyError(name)
    buffer = io.BytesIO()
    _render(name).save(buffer, format="PNG")
    return buffer.getvalue()
