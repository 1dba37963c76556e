"""A generated set of images that are not food, for fitting and measuring ``not_food``.

Nothing is downloaded: the photos are the ones scikit-image and Matplotlib ship (people, a cat,
a horse, a rocket, a motorcycle, space, a retina, coins, textures, a page of text, …), plus
charts drawn with Matplotlib, rendered documents and screenshots, solid colours, noise,
gradients and patterns made here. scikit-image's ``cat`` is ``chelsea`` again, so it appears
once; its coffee cup is left out on purpose (a drink is close enough to food that refusing it
would be a matter of taste).

Each image has a family (``photo``, ``crop``, ``chart``, ``document``, ``screen``, ``colour``,
``noise``, ``pattern``); :func:`split` alternates within a family, so that the half used to fit
a threshold and the half used to check it hold the same kinds of image.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# skimage.data images that load without a download, none of them food.
SKIMAGE_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
    "stereo_motorcycle",
    "moon",
    "brick",
    "grass",
    "gravel",
    "cell",
    "clock",
    "colorwheel",
    "logo",
    "page",
    "text",
    "horse",
    "checkerboard",
    "binary_blobs",
    "microaneurysms",
    "shepp_logan_phantom",
)
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")
# (source photo, box as fractions of width and height): other views of the photos above.
CROPS = (
    ("astronaut", (0.3, 0.0, 0.75, 0.5)),
    ("rocket", (0.3, 0.2, 0.7, 1.0)),
    ("stereo_motorcycle", (0.0, 0.2, 0.6, 0.9)),
    ("hubble_deep_field", (0.5, 0.5, 1.0, 1.0)),
    ("retina", (0.25, 0.25, 0.75, 0.75)),
    ("chelsea", (0.3, 0.0, 0.8, 0.8)),
    ("camera", (0.2, 0.0, 0.8, 0.6)),
)
COLOURS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "blue": (30, 60, 200),
    "green": (40, 160, 60),
    "sky": (135, 190, 235),
    "beige": (225, 210, 180),
}
SIZE = (640, 480)


@dataclass(frozen=True)
class NonFoodImage:
    name: str
    family: str
    image: Image.Image


def nonfood_images() -> list[NonFoodImage]:
    """Every image of the set, in a fixed order (the same images on every machine)."""
    return list(_generate())


def split(images: list[NonFoodImage]) -> tuple[list[NonFoodImage], list[NonFoodImage]]:
    """``(fit, check)``: alternate images of each family go to each half."""
    fit: list[NonFoodImage] = []
    check: list[NonFoodImage] = []
    seen: dict[str, int] = {}
    for item in images:
        index = seen.get(item.family, 0)
        (fit if index % 2 == 0 else check).append(item)
        seen[item.family] = index + 1
    return fit, check


def _generate() -> Iterator[NonFoodImage]:
    photos = dict(_photos())
    for name, image in photos.items():
        yield NonFoodImage(name, "photo", image)
    for name, box in CROPS:
        yield NonFoodImage(f"{name} (crop)", "crop", _crop(photos[name], box))
    for name, draw_chart in CHARTS.items():
        yield NonFoodImage(name, "chart", _render_figure(draw_chart))
    for index, lines in enumerate(DOCUMENTS):
        yield NonFoodImage(f"document {index + 1}", "document", _document(lines))
    for index in range(4):
        yield NonFoodImage(f"screenshot {index + 1}", "screen", _screenshot(index))
    for name, rgb in COLOURS.items():
        yield NonFoodImage(f"solid {name}", "colour", Image.new("RGB", SIZE, rgb))
    for name, make in NOISE.items():
        yield NonFoodImage(name, "noise", make(np.random.default_rng(len(name))))
    for name, make_pattern in PATTERNS.items():
        yield NonFoodImage(name, "pattern", make_pattern())


def _photos() -> Iterator[tuple[str, Image.Image]]:
    import matplotlib.cbook
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        # binary_blobs draws new blobs on every call unless seeded.
        options = {"rng": 1} if name == "binary_blobs" else {}
        array = getattr(skimage.data, name)(**options)
        if isinstance(array, tuple):  # stereo pairs: the left view
            array = array[0]
        yield name, _to_rgb(np.asarray(array))
    for name in MATPLOTLIB_PHOTOS:
        path = str(matplotlib.cbook.get_sample_data(name, asfileobj=False))
        with Image.open(path) as image:
            yield name, image.convert("RGB")


def _to_rgb(array: np.ndarray) -> Image.Image:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        array = ((array - low) / ((high - low) or 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def _crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    width, height = image.size
    left, top, right, bottom = box
    return image.crop(
        (int(left * width), int(top * height), int(right * width), int(bottom * height))
    )


def _render_figure(draw: Callable) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    draw(axes, np.random.default_rng(7))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return Image.open(buffer).convert("RGB")


def _line(axes, rng) -> None:
    x = np.linspace(0, 10, 200)
    for shift in range(3):
        axes.plot(x, np.sin(x + shift) + rng.normal(0, 0.1, x.size), label=f"series {shift}")
    axes.legend()
    axes.set_title("Quarterly sensor readings")


def _bars(axes, rng) -> None:
    axes.bar(["north", "south", "east", "west", "centre"], rng.integers(10, 90, 5))
    axes.set_ylabel("units sold")


def _pie(axes, rng) -> None:
    axes.pie(rng.integers(5, 40, 5), labels=list("ABCDE"), autopct="%1.0f%%")


def _scatter(axes, rng) -> None:
    axes.scatter(rng.normal(size=300), rng.normal(size=300), c=rng.random(300), cmap="viridis")
    axes.grid(True)


def _histogram(axes, rng) -> None:
    axes.hist(rng.normal(size=2000), bins=40, color="tab:purple")


def _heatmap(axes, rng) -> None:
    axes.imshow(rng.random((20, 30)), cmap="magma")


def _terrain(axes, _rng) -> None:
    import matplotlib.cbook

    with np.load(str(matplotlib.cbook.get_sample_data("topobathy.npz", asfileobj=False))) as data:
        axes.imshow(data["topo"], cmap="terrain")


def _contour(axes, _rng) -> None:
    x, y = np.meshgrid(np.linspace(-3, 3, 200), np.linspace(-3, 3, 200))
    axes.contourf(x, y, np.exp(-(x**2) - y**2) - np.exp(-((x - 1) ** 2) - (y - 1) ** 2), 20)


CHARTS: dict[str, Callable] = {
    "line chart": _line,
    "bar chart": _bars,
    "pie chart": _pie,
    "scatter plot": _scatter,
    "histogram": _histogram,
    "heat map": _heatmap,
    "terrain map": _terrain,
    "contour plot": _contour,
}

DOCUMENTS = (
    [
        "INVOICE 2041",
        "",
        "Item                 Qty    Price",
        "Consulting hours      12   960.00",
        "Travel                 1   210.50",
        "",
        "Total due                 1170.50",
    ],
    [
        "Dear committee,",
        "",
        "Thank you for the opportunity to present our findings on the",
        "river survey. The attached report covers sampling methods, the data",
        "collected between March and June, and our recommendations.",
        "",
        "Kind regards",
    ],
    [
        "def fibonacci(n):",
        "    a, b = 0, 1",
        "    for _ in range(n):",
        "        a, b = b, a + b",
        "    return a",
        "",
        "print(fibonacci(30))",
    ],
    [
        "Meeting notes - 14 May",
        "- budget approved",
        "- hire two engineers",
        "- move the launch to autumn",
        "- next review in four weeks",
    ],
    [
        "TERMS AND CONDITIONS",
        "1. The service is provided as is.",
        "2. Accounts may be closed at any time.",
        "3. These terms are governed by local law.",
    ],
)


def _document(lines: list[str]) -> Image.Image:
    image = Image.new("RGB", (480, 640), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((30, 40 + row * 28), line, fill=(20, 20, 20), font_size=18)
    return image


def _screenshot(variant: int) -> Image.Image:
    rng = np.random.default_rng(variant)
    background = ((236, 236, 236), (30, 30, 36), (250, 250, 255), (44, 62, 80))[variant]
    image = Image.new("RGB", SIZE, background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, SIZE[0], 36), fill=(60, 90, 160))
    draw.text((12, 8), f"Settings - window {variant + 1}", fill="white", font_size=16)
    for row in range(8):
        top = 60 + row * 48
        shade = tuple(int(c) for c in rng.integers(120, 230, 3))
        draw.rounded_rectangle((20, top, 300, top + 34), radius=6, fill=shade)
        draw.text((32, top + 8), f"Option {row + 1}", fill=(10, 10, 10), font_size=14)
        draw.ellipse((560, top + 6, 582, top + 28), outline=(90, 90, 90), width=2)
    return image


def _gaussian_noise(rng: np.random.Generator) -> Image.Image:
    pixels = np.clip(rng.normal(128, 50, (*SIZE[::-1], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _uniform_noise(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (*SIZE[::-1], 3), dtype=np.uint8))


def _smooth_noise(rng: np.random.Generator) -> Image.Image:
    return _uniform_noise(rng).filter(ImageFilter.GaussianBlur(12))


def _salt_and_pepper(rng: np.random.Generator) -> Image.Image:
    pixels = np.where(rng.random((*SIZE[::-1], 1)) < 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(pixels, 3, axis=2))


NOISE: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "gaussian noise": _gaussian_noise,
    "uniform noise": _uniform_noise,
    "smooth noise": _smooth_noise,
    "salt and pepper": _salt_and_pepper,
}


def _gradient() -> Image.Image:
    ramp = np.linspace(0, 255, SIZE[0], dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (SIZE[1], 1))] * 3, axis=2)
    pixels[..., 2] = 255 - pixels[..., 2]
    return Image.fromarray(pixels)


def _stripes() -> Image.Image:
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    for left in range(0, SIZE[0], 40):
        draw.rectangle((left, 0, left + 19, SIZE[1]), fill=(20, 40, 120))
    return image


def _shapes() -> Image.Image:
    image = Image.new("RGB", SIZE, (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 260, 200), fill=(220, 40, 40))
    draw.polygon([(400, 60), (560, 300), (300, 300)], fill=(40, 120, 220))
    draw.ellipse((120, 260, 320, 440), fill=(250, 200, 30))
    return image


def _grid() -> Image.Image:
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    for x in range(0, SIZE[0], 32):
        draw.line((x, 0, x, SIZE[1]), fill=(150, 150, 150))
    for y in range(0, SIZE[1], 32):
        draw.line((0, y, SIZE[0], y), fill=(150, 150, 150))
    return image


PATTERNS: dict[str, Callable[[], Image.Image]] = {
    "gradient": _gradient,
    "stripes": _stripes,
    "shapes": _shapes,
    "grid paper": _grid,
}
