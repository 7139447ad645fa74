"""Class-dependent images that a small network learns in a few epochs: synthetic data's content.

Each generator takes a seeded ``numpy`` generator and the number of images per split, and returns
``{split: (images uint8, labels uint8)}`` with splits in the given order (the order matters: the
splits draw from one random stream).

- ``digits`` (MNIST-like, 28x28): per class a prototype of three thick strokes; each image is its
  prototype shifted by up to two pixels, with random contrast and noise. Its random stream must stay
  as it is: the example submissions' expected grades were computed on exactly these images.
- ``garments`` (Fashion-MNIST-like, 28x28): per class a filled silhouette of overlapping boxes and
  ellipses with a striped texture of the class's own orientation and period.
- ``scenes`` (CIFAR-10-like, 32x32 RGB): per class a shape and a colour, drawn at a random place
  and size over a random two-colour gradient, with noise.
"""

from __future__ import annotations

import numpy as np

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
CLASSES = 10


def digits(rng: np.random.Generator, sizes: dict[str, int]) -> Splits:
    protos = _stroke_prototypes(rng)
    return {split: _shifted_noisy_copies(protos, n, rng) for split, n in sizes.items()}


def _stroke_prototypes(rng: np.random.Generator) -> np.ndarray:
    protos = np.zeros((CLASSES, 28, 28), dtype=np.float64)
    yy, xx = np.mgrid[0:28, 0:28]
    for c in range(CLASSES):
        for _ in range(3):
            (x0, y0), (x1, y1) = rng.uniform(6, 22, size=(2, 2))
            t = np.linspace(0, 1, 40)
            for px, py in zip(x0 + t * (x1 - x0), y0 + t * (y1 - y0)):
                protos[c] = np.maximum(protos[c], np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 2.0))
    return protos


def _shifted_noisy_copies(protos: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # One image at a time, drawing shift, contrast and noise in this order: see the module docstring.
    labels = rng.integers(0, len(protos), size=n).astype(np.uint8)
    images = np.empty((n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        img = np.roll(protos[label], (dy, dx), axis=(0, 1)) * rng.uniform(0.7, 1.0)
        img = img + rng.normal(0, 0.08, size=img.shape)
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return images, labels


def garments(rng: np.random.Generator, sizes: dict[str, int]) -> Splits:
    protos = _silhouette_prototypes(rng)
    out = {}
    for split, n in sizes.items():
        labels = rng.integers(0, CLASSES, size=n).astype(np.uint8)
        shifted = _shift_batch(protos[labels], rng.integers(-2, 3, size=(n, 2)))
        contrast = rng.uniform(0.6, 1.0, size=(n, 1, 1))
        images = shifted * contrast + rng.normal(0, 0.1, size=shifted.shape)
        out[split] = (_to_uint8(images), labels)
    return out


def _silhouette_prototypes(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float64)
    protos = np.zeros((CLASSES, 28, 28))
    for c in range(CLASSES):
        shape = np.zeros((28, 28), dtype=bool)
        for part in range(3):
            cy, cx = rng.uniform(8, 20, size=2)
            hy, hx = rng.uniform(3, 9, size=2)
            if part % 2 == 0:
                shape |= (np.abs(yy - cy) <= hy) & (np.abs(xx - cx) <= hx)
            else:
                shape |= ((yy - cy) / hy) ** 2 + ((xx - cx) / hx) ** 2 <= 1
        angle, period = rng.uniform(0, np.pi), rng.uniform(3, 7)
        stripes = 0.5 + 0.5 * np.cos(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        protos[c] = shape * (0.55 + 0.45 * stripes)
    return protos


def _shift_batch(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each image moved by its own (dy, dx), zeros shifted in: one gather instead of a Python loop."""
    n, height, width = images.shape
    pad = int(np.abs(shifts).max(initial=0))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    rows = np.arange(height)[None, :] + pad - shifts[:, :1]
    cols = np.arange(width)[None, :] + pad - shifts[:, 1:]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def scenes(rng: np.random.Generator, sizes: dict[str, int]) -> Splits:
    palette = rng.uniform(0.1, 0.9, size=(CLASSES, 3))
    out = {}
    for split, n in sizes.items():
        labels = rng.integers(0, CLASSES, size=n).astype(np.uint8)
        background = _gradients(rng, n)
        masks = _shape_masks(labels, rng)
        colours = np.clip(palette[labels] + rng.normal(0, 0.08, size=(n, 3)), 0, 1)
        images = np.where(masks[..., None], colours[:, None, None, :], background)
        out[split] = (_to_uint8(images + rng.normal(0, 0.05, size=images.shape)), labels)
    return out


def _gradients(rng: np.random.Generator, n: int) -> np.ndarray:
    """Backgrounds: a blend between two random colours along a random direction."""
    start, end = rng.uniform(0, 1, size=(2, n, 1, 1, 3))
    angle = rng.uniform(0, 2 * np.pi, size=(n, 1, 1, 1))
    yy, xx = (np.mgrid[0:32, 0:32] / 31.0)[:, None, :, :, None]
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)
    return start + (end - start) * t


def _shape_masks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``[N, 32, 32]``: shape ``label`` centred at a random place with a random radius."""
    n = len(labels)
    centre = rng.uniform(11, 21, size=(n, 2))
    r = rng.uniform(6, 10, size=(n, 1, 1))
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    dy, dx = yy - centre[:, :1, None], xx - centre[:, 1:, None]
    ay, ax = np.abs(dy), np.abs(dx)
    dist, box = np.hypot(dx, dy), np.maximum(ax, ay)
    shapes = [
        dist <= r,                                                    # disc
        box <= 0.8 * r,                                               # square
        (dist <= r) & (dist >= 0.55 * r),                             # ring
        ((ax <= r / 4) & (ay <= r)) | ((ay <= r / 4) & (ax <= r)),    # plus
        ax + ay <= r,                                                 # diamond
        (ay <= r / 3) & (ax <= 1.3 * r),                              # horizontal bar
        (ax <= r / 3) & (ay <= 1.3 * r),                              # vertical bar
        (ay <= r) & (ax <= (dy + r) / 2),                             # triangle, apex up
        (box <= r) & (box >= 0.6 * r),                                # frame
        (np.abs(ax - ay) <= r / 4) & (box <= r),                      # cross (x)
    ]
    return np.stack(shapes)[labels.astype(np.int64), np.arange(n)]


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(images * 255, 0, 255).astype(np.uint8)
