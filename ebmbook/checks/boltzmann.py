"""Checkers of the chapter "Boltzmann distributions and the partition function".

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import energies, grid
from .compare import CheckResult, compare

__all__ = ["check_boltzmann_probs", "check_log_partition_1d"]


def _boltzmann_reference(energies: Tensor, temperature: float) -> Tensor:
    return torch.softmax(-energies / temperature, dim=-1)


def _hint_overflow(got, want, inputs):
    if isinstance(got, Tensor) and not torch.isfinite(got).all():
        return ("exp(−E/T) overflowed or underflowed; subtract the smallest energy first "
                "(it cancels in the ratio), or use torch.softmax(−E/T, dim=−1)")
    return None


def _hint_boltzmann_sign(got, want, inputs):
    e, t = inputs["energies"], inputs["temperature"]
    if isinstance(got, Tensor) and got.shape == e.shape:
        if torch.allclose(got.double(), torch.softmax(e.double() / t, -1), atol=1e-6):
            return "the sign is flipped: probability falls as energy rises, p ∝ exp(−E/T)"
        if torch.allclose(got.double(), torch.softmax(-e.double(), -1), atol=1e-6):
            return "the temperature is ignored: divide the energies by T"
        if torch.allclose(got.double(), torch.softmax(-e.double() * t, -1), atol=1e-6):
            return "multiply by β = 1/T, i.e. divide by T, not multiply"
        if abs(got.double().sum(-1) - 1).max() > 1e-4:
            return "the probabilities do not sum to 1: divide by Z = Σ exp(−Eᵢ/T)"
    return None


def check_boltzmann_probs(fn: Callable[[Tensor, float], Tensor]) -> CheckResult:
    """Check a student's Boltzmann probabilities of a finite system:

        pᵢ = exp(−Eᵢ/T) / Σⱼ exp(−Eⱼ/T)

    ``fn(energies, temperature)`` takes energies of shape (K,) and T > 0 and returns shape (K,).
    The cases include energies in the thousands, where the textbook formula overflows.

    Returns:
        A :class:`~ebmbook.checks.compare.CheckResult`.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    def e(*v):
        return torch.tensor(v, dtype=torch.float64)

    cases = [
        ("three levels at T = 1", dict(energies=e(0.0, 1.0, 2.0), temperature=1.0)),
        ("three levels at T = 0.5", dict(energies=e(0.0, 1.0, 2.0), temperature=0.5)),
        ("negative energies at T = 2", dict(energies=e(-3.0, 0.5, -1.0, 2.0), temperature=2.0)),
        ("a single level", dict(energies=e(4.2), temperature=1.3)),
        ("large energies (exp overflows)", dict(energies=e(1000.0, 1001.0, 1003.0), temperature=1.0)),
        ("very negative energies", dict(energies=e(-800.0, -805.0), temperature=0.7)),
        ("a cold system, T = 0.01", dict(energies=e(0.0, 0.05, 1.0), temperature=0.01)),
    ]
    return compare(fn, _boltzmann_reference, cases, name="boltzmann_probs",
                   hints=[_hint_overflow, _hint_boltzmann_sign])


def _log_z_reference(energy, low, high, n):
    return grid.log_partition(energy, grid.make_grid(low, high, n, dim=1, dtype=torch.float64))


def _hint_cell_width(got, want, inputs):
    h = (inputs["high"] - inputs["low"]) / inputs["n"]
    g = float(got) if isinstance(got, (int, float)) or (isinstance(got, Tensor) and got.numel() == 1) else None
    if g is None:
        return "return a single number (a 0-dim tensor or a float)"
    if abs(g - (float(want) - math.log(h))) < 1e-5:
        return f"the cell width h = (high − low)/n = {h:.4g} is missing: log Z = logsumexp(−E) + log h"
    if abs(g - (float(want) + math.log(h) - math.log(h * inputs["n"] / (inputs["n"] - 1)))) < 1e-4:
        return "use the cell centres low + (i + ½)h, i = 0…n−1, not the n evenly spaced end points"
    if not math.isfinite(g):
        return "exp(−E) overflowed or underflowed; use torch.logsumexp"
    return None


def check_log_partition_1d(fn: Callable) -> CheckResult:
    """Check a student's midpoint-rule log partition function in 1-D:

        log Z ≈ log Σᵢ exp(−E(xᵢ)) h,   xᵢ = low + (i + ½)h,  h = (high − low)/n

    ``fn(energy, low, high, n)`` takes an energy callable ((m, 1) -> (m,)), the interval and the
    number of cells, and returns log Z as a number or 0-dim tensor. Compared in float64.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    def quadratic(x):
        return 0.5 * x[:, 0] ** 2

    def shifted_well(x):
        return energies.double_well(x, barrier=3.0) + 800.0

    def deep_well(x):
        return 40.0 * (x[:, 0] - 0.3) ** 2 - 750.0

    cases = [
        ("E = x²/2 on [−6, 6], 200 cells (log Z = ½ log 2π)", dict(energy=quadratic, low=-6.0, high=6.0, n=200)),
        ("a double well shifted up by 800 (exp(−E) underflows)", dict(energy=shifted_well, low=-3.0, high=3.0, n=300)),
        ("a narrow deep well, E ≈ −750 (exp(−E) overflows)", dict(energy=deep_well, low=-2.0, high=2.0, n=400)),
        ("few cells", dict(energy=quadratic, low=-5.0, high=5.0, n=7)),
    ]

    def student(energy, low, high, n):
        out = fn(energy, low, high, n)
        return torch.as_tensor(out, dtype=torch.float64).reshape(()) if isinstance(out, (int, float, Tensor)) else out

    return compare(student, _log_z_reference, cases, name="log_partition_1d", atol=1e-6, rtol=1e-6,
                   hints=[_hint_cell_width])
