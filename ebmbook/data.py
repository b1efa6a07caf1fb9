"""Data sets that need no download: 2-D toys drawn with a generator, and scikit-learn's 8x8 digits.

Each toy sampler draws from exactly the distribution whose normalized energy has the
same name in :mod:`ebmbook.energies`; the default parameters of both live here (the
constants below), so ``eb.grid.entropy(eb.energies.two_moons, grid)`` is the entropy of
``eb.data.two_moons``. Tensors are created on the generator's device.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from sklearn.datasets import load_digits
from torch import Tensor

from ._contracts import count, floating
from .device import check_generator

__all__ = ["eight_gaussians", "two_moons", "banana", "DigitsSplit", "digits_split"]

# Defaults of the 2-D toys, shared with their exact energies in ebmbook.energies
EIGHT_GAUSSIANS_RADIUS = 4 / math.sqrt(2)
EIGHT_GAUSSIANS_STD = 0.5 / math.sqrt(2)
TWO_MOONS_NOISE = 0.1
BANANA_CURVATURE = 0.35
BANANA_SHIFT = 1.75
BANANA_STD = 0.25


def _check(n: int, generator: torch.Generator, dtype: torch.dtype) -> None:
    count(n, "n")
    check_generator(generator)
    floating(dtype)


def _randn(shape, generator, dtype):
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)


def _randint(high, n, generator):
    return torch.randint(high, (n,), generator=generator, device=generator.device)


def eight_gaussians(n: int, *, generator: torch.Generator, radius: float = EIGHT_GAUSSIANS_RADIUS,
                    std: float = EIGHT_GAUSSIANS_STD, dtype: torch.dtype = torch.float32) -> Tensor:
    """n points from eight equal Gaussians on a circle; density :func:`ebmbook.energies.eight_gaussians`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator, dtype)
    k = _randint(8, n, generator).to(dtype) * (math.pi / 4)                # (n,) mode angles
    centres = radius * torch.stack([k.cos(), k.sin()], dim=1)             # (n, 2)
    return centres + std * _randn((n, 2), generator, dtype)


def two_moons(n: int, *, generator: torch.Generator, noise: float = TWO_MOONS_NOISE,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """n points from two interleaved noisy half circles; density :func:`ebmbook.energies.two_moons`.

    Unlike scikit-learn's ``make_moons``, each point picks its moon at random.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator, dtype)
    moon = _randint(2, n, generator).bool()                               # (n,)
    t = math.pi * torch.rand(n, generator=generator, device=generator.device, dtype=dtype)
    outer = torch.stack([t.cos(), t.sin()], dim=1)
    inner = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    clean = torch.where(moon[:, None], inner, outer)                      # (n, 2)
    return clean + noise * _randn((n, 2), generator, dtype)


def banana(n: int, *, generator: torch.Generator, curvature: float = BANANA_CURVATURE,
           shift: float = BANANA_SHIFT, std: float = BANANA_STD,
           dtype: torch.dtype = torch.float32) -> Tensor:
    """n points with x₁ ~ N(0, 1), x₂ = b x₁² − s + σ ξ; density :func:`ebmbook.energies.banana`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    _check(n, generator, dtype)
    z = _randn((n, 2), generator, dtype)
    x1 = z[:, 0]
    return torch.stack([x1, curvature * x1**2 - shift + std * z[:, 1]], dim=1)


class DigitsSplit(NamedTuple):
    """The 8x8 digits cut into a training and a held-out test part (see :func:`digits_split`).

    Attributes:
        x_train: images, shape (1797 − n_test, 1, 8, 8), in [−1, 1].
        y_train: their labels 0…9, shape (1797 − n_test,).
        x_test: images, shape (n_test, 1, 8, 8).
        y_test: labels, shape (n_test,).

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def digits_split(n_test: int = 360, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> DigitsSplit:
    """scikit-learn's bundled 8x8 digits (1,797 images), scaled to [−1, 1], the last ``n_test`` held out.

    The pixel levels v = 0…16 map to x = v/8 − 1; nothing is downloaded. The split is by
    position in scikit-learn's order, with no random numbers, so it is the same on every
    machine. That order cycles through the classes, so both parts hold every digit in nearly
    equal shares (the default 360 test images hold 33 to 37 of each).

    Args:
        n_test: images held out, 1 ≤ n_test < 1797.
        device, dtype: where and how the images are stored.

    Returns:
        A :class:`DigitsSplit`: x_train (1797 − n_test, 1, 8, 8), y_train, x_test (n_test, 1, 8, 8), y_test.

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
    """
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=floating(dtype), device=device)[:, None] / 8 - 1  # (1797, 1, 8, 8)
    labels = torch.as_tensor(bunch.target, device=device)
    n = images.shape[0]
    if count(n_test, "n_test") >= n:
        raise ValueError(f"n_test must be < {n}, the number of images, got {n_test!r}; leave some for training")
    cut = n - n_test
    return DigitsSplit(images[:cut], labels[:cut], images[cut:], labels[cut:])
