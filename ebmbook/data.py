"""Data sets that need no download: 2-D toys drawn with a generator, and scikit-learn's 8x8 digits.

Each toy sampler draws from exactly the distribution whose normalized energy has the
same name in :mod:`ebmbook.energies`, with the same default parameters, so
``eb.grid.entropy(eb.energies.two_moons, grid)`` is the entropy of ``eb.data.two_moons``.
Tensors are created on the generator's device.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from sklearn.datasets import load_digits
from torch import Tensor

from . import energies
from .device import check_generator

__all__ = ["eight_gaussians", "two_moons", "rings", "checkerboard", "banana", "digits", "DigitsSplit", "digits_split"]


def _check(n: int, generator: torch.Generator) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    check_generator(generator)


def _randn(shape, generator, dtype):
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)


def _rand(shape, generator, dtype):
    return torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)


def _randint(high, n, generator):
    return torch.randint(high, (n,), generator=generator, device=generator.device)


def eight_gaussians(n: int, *, generator: torch.Generator, radius: float = energies.EIGHT_GAUSSIANS_RADIUS,
                    std: float = energies.EIGHT_GAUSSIANS_STD, dtype: torch.dtype = torch.float32) -> Tensor:
    """n points from eight equal Gaussians on a circle; density :func:`ebmbook.energies.eight_gaussians`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator)
    k = _randint(8, n, generator).to(dtype) * (math.pi / 4)                # (n,) mode angles
    centres = radius * torch.stack([k.cos(), k.sin()], dim=1)             # (n, 2)
    return centres + std * _randn((n, 2), generator, dtype)


def two_moons(n: int, *, generator: torch.Generator, noise: float = energies.TWO_MOONS_NOISE,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """n points from two interleaved noisy half circles; density :func:`ebmbook.energies.two_moons`.

    Unlike scikit-learn's ``make_moons``, each point picks its moon at random.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator)
    moon = _randint(2, n, generator).bool()                               # (n,)
    t = math.pi * _rand(n, generator, dtype)
    outer = torch.stack([t.cos(), t.sin()], dim=1)
    inner = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    clean = torch.where(moon[:, None], inner, outer)                      # (n, 2)
    return clean + noise * _randn((n, 2), generator, dtype)


def rings(n: int, *, generator: torch.Generator, radii: Sequence[float] = energies.RINGS_RADII,
          std: float = energies.RINGS_STD, dtype: torch.dtype = torch.float32) -> Tensor:
    """n points from concentric rings of equal weight; density :func:`ebmbook.energies.rings`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator)
    r = torch.as_tensor(radii, dtype=dtype, device=generator.device)[_randint(len(radii), n, generator)]
    theta = 2 * math.pi * _rand(n, generator, dtype)
    clean = r[:, None] * torch.stack([theta.cos(), theta.sin()], dim=1)  # (n, 2)
    return clean + std * _randn((n, 2), generator, dtype)


def checkerboard(n: int, *, generator: torch.Generator, std: float = energies.CHECKERBOARD_STD,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """n points uniform on the 8 dark squares of a 4×4 board on [−2, 2]², blurred by N(0, σ² I).

    Density :func:`ebmbook.energies.checkerboard`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator)
    corners = energies._checkerboard_corners(dtype, generator.device)   # (8, 2)
    clean = corners[_randint(8, n, generator)] + _rand((n, 2), generator, dtype)
    return clean + std * _randn((n, 2), generator, dtype)


def banana(n: int, *, generator: torch.Generator, curvature: float = energies.BANANA_CURVATURE,
           shift: float = energies.BANANA_SHIFT, std: float = energies.BANANA_STD,
           dtype: torch.dtype = torch.float32) -> Tensor:
    """n points with x₁ ~ N(0, 1), x₂ = b x₁² − s + σ ξ; density :func:`ebmbook.energies.banana`.

    Returns:
        Points, shape (n, 2).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check(n, generator)
    z = _randn((n, 2), generator, dtype)
    x1 = z[:, 0]
    return torch.stack([x1, curvature * x1**2 - shift + std * z[:, 1]], dim=1)


def digits(*, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), scaled to [−1, 1].

    The pixel levels 0…16 map to x = v/8 − 1. Nothing is downloaded.

    Returns:
        (images, labels): images of shape (1797, 1, 8, 8) and integer labels (1797,).

    See chapter: "Training by contrastive divergence".
    """
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=dtype, device=device) / 8 - 1   # (1797, 8, 8)
    labels = torch.as_tensor(bunch.target, device=device)
    return images[:, None], labels


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
    """The images of :func:`digits` with the last ``n_test`` held out as a test set.

    The split is by position in scikit-learn's order, with no random numbers, so it is the
    same on every machine. That order cycles through the classes, so both parts hold every
    digit in nearly equal shares (the default 360 test images hold 33 to 37 of each).

    Args:
        n_test: images held out, 1 ≤ n_test < 1797.
        device, dtype: where and how the images are stored.

    Returns:
        A :class:`DigitsSplit`: x_train (1797 − n_test, 1, 8, 8), y_train, x_test (n_test, 1, 8, 8), y_test.

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
    """
    images, labels = digits(device=device, dtype=dtype)
    n = images.shape[0]
    if isinstance(n_test, bool) or not isinstance(n_test, int) or not 1 <= n_test < n:
        raise ValueError(f"n_test must be an int with 1 ≤ n_test < {n}, got {n_test!r}")
    cut = n - n_test
    return DigitsSplit(images[:cut], labels[:cut], images[cut:], labels[cut:])
