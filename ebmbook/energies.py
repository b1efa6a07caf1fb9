"""What an energy is, the analytic energies of the book, the exact energies of the toys, and gradients.

The contract: an energy is any callable mapping a batch ``x`` of shape ``(n, *event_shape)``
to a tensor of shape ``(n,)`` in the dtype of ``x``; lower energy means more probable,
p(x) ∝ exp(−E(x)/T). Every function here refuses an empty batch and integer points.

Every 2-D toy energy here is *normalized*: it is exactly −log p_data(x) of the matching
sampler in :mod:`ebmbook.data`, whose defaults it shares, so its log Z is 0 and its grid
entropy is the data entropy. Learnable energies are in :mod:`ebmbook.nets`.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ._contracts import count, points, positive
from .data import BANANA_CURVATURE, BANANA_SHIFT, BANANA_STD, EIGHT_GAUSSIANS_RADIUS, EIGHT_GAUSSIANS_STD, TWO_MOONS_NOISE

__all__ = ["Energy", "evaluate", "grad_energy", "value_and_grad", "score", "gaussian", "gaussian_log_partition",
           "gaussian_mixture", "double_well", "eight_gaussians", "two_moons", "banana"]

#: The energy contract, any callable that maps x of shape (n, *event_shape) to E(x) of
#: shape (n,), where lower energy means more probable.
Energy = Callable[[Tensor], Tensor]  # x: (n, *event_shape) -> E(x): (n,)


def evaluate(energy: Energy, x: Tensor, *, allow_nonfinite: bool = False) -> Tensor:
    """Call ``energy`` on ``x`` and check the contract.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: points, shape (n, *event_shape).
        allow_nonfinite: accept inf/NaN values (samplers reject such proposals).

    Returns:
        Energies, shape (n,).

    Raises:
        TypeError: x is not a floating-point tensor.
        ValueError: x is not a non-empty batch; the energy returned another shape, or non-finite values.
    """
    e = energy(points(x))
    if not isinstance(e, Tensor) or e.shape != (x.shape[0],):
        got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        hint = " (sum over the event dimensions, or squeeze a trailing 1)" if isinstance(e, Tensor) else ""
        raise ValueError(f"energy must return shape ({x.shape[0]},) for x of shape {tuple(x.shape)}, got {got}{hint}")
    if not allow_nonfinite and not torch.isfinite(e).all():
        bad = (~torch.isfinite(e)).nonzero()[0].item()
        raise ValueError(f"energy returned a non-finite value ({e[bad].item()}) at row {bad}, x = {x[bad].tolist()}; "
                         "check the energy's formula there, or restrict the points to where it is defined")
    return e


def value_and_grad(energy: Energy, x: Tensor, *, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """E(x) and ∇ₓE(x) from one forward and one backward pass.

    Parameter ``.grad`` fields are never touched, so this is safe inside a training loop.
    Without ``create_graph``, the parameters of an ``nn.Module`` energy stop requiring
    gradients for the duration of the call and are restored afterwards (also on error), so
    autograd records only the path to x while chains move, as a hand-written sampling loop
    does. With ``create_graph`` they stay tracked: the KL term differentiates through a step.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: points, shape (n, *event_shape).
        create_graph: keep the graph, so the result can be differentiated again
            (Hessians, or gradients that flow through a sampler step).

    Returns:
        (e, g): energies (n,) and input gradients (n, *event_shape); detached unless
        ``create_graph``. Non-finite energies are returned as they are (samplers reject them).
    """
    points(x)
    tracked = [] if create_graph or not isinstance(energy, nn.Module) else \
        [p for p in energy.parameters() if p.requires_grad]
    try:
        for p in tracked:
            p.requires_grad = False
        with torch.enable_grad():
            x_in = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
            e = evaluate(energy, x_in, allow_nonfinite=True)
            (g,) = torch.autograd.grad(e.sum(), x_in, create_graph=create_graph)
    finally:
        for p in tracked:
            p.requires_grad = True
    if not create_graph:
        e, g = e.detach(), g.detach()
    return e, g


def grad_energy(energy: Energy, x: Tensor, *, create_graph: bool = False) -> Tensor:
    """∇ₓE(x), shape (n, *event_shape); leaves parameter ``.grad`` fields untouched.

    See :func:`value_and_grad`, which also returns E(x) at no extra cost.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return value_and_grad(energy, x, create_graph=create_graph)[1]


def score(energy: Energy, x: Tensor, *, create_graph: bool = False) -> Tensor:
    """The score s(x) = ∇ₓ log p(x) = −∇ₓE(x), shape (n, *event_shape)."""
    return -grad_energy(energy, x, create_graph=create_graph)


def _matrix(covariance: Tensor | None, precision: Tensor | None, dtype: torch.dtype, device=None) -> Tensor:
    """The one matrix given, Σ or P, as a square (d, d) tensor."""
    if (covariance is None) == (precision is None):
        raise ValueError("give exactly one of covariance= or precision=")
    m = torch.as_tensor(covariance if precision is None else precision, dtype=dtype, device=device)
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"covariance/precision must be a square (d, d) matrix, got {tuple(m.shape)}")
    return m


def gaussian(x: Tensor, mean: Tensor, *, covariance: Tensor | None = None, precision: Tensor | None = None) -> Tensor:
    """Energy of N(μ, Σ), unnormalized:  E(x) = ½ (x − μ)ᵀ P (x − μ),  P = Σ⁻¹.

    Its log partition function is :func:`gaussian_log_partition`.

    Args:
        x: points, shape (n, d).
        mean: μ, shape (d,).
        covariance: Σ, shape (d, d); or give ``precision`` P instead.
        precision: P, shape (d, d).

    Returns:
        Energies, shape (n,).

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    mean = torch.as_tensor(mean, dtype=points(x).dtype, device=x.device)
    if mean.dim() != 1:
        raise ValueError(f"mean must have shape (d,), got {tuple(mean.shape)}")
    points(x, dim=mean.shape[0])
    p = _matrix(covariance, precision, x.dtype, x.device)                 # inverted in the points' precision
    p = torch.linalg.inv(p) if precision is None else p
    if p.shape[0] != mean.shape[0]:
        raise ValueError(f"mean has d={mean.shape[0]} but the matrix is {tuple(p.shape)}")
    diff = x - mean                                    # (n, d)
    return 0.5 * ((diff @ p) * diff).sum(dim=1)


def gaussian_log_partition(*, covariance: Tensor | None = None, precision: Tensor | None = None,
                           temperature: float = 1.0) -> Tensor:
    """Closed-form log Z of the Gaussian energy at temperature T:

        log Z(T) = (d/2) log(2πT) + ½ log det Σ

    Args:
        covariance: Σ, shape (d, d); or ``precision`` P = Σ⁻¹.
        precision: P, shape (d, d).
        temperature: T > 0.

    Returns:
        A 0-dim tensor.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    positive(temperature, "temperature")
    m = _matrix(covariance, precision, torch.float64)
    if torch.linalg.cholesky_ex(m).info != 0:
        raise ValueError(f"covariance/precision must be symmetric positive definite, got {m.tolist()}")
    _, logdet = torch.linalg.slogdet(m)
    logdet_cov = logdet if precision is None else -logdet
    return 0.5 * m.shape[0] * math.log(2 * math.pi * temperature) + 0.5 * logdet_cov


def gaussian_mixture(x: Tensor, means: Tensor, stds: Tensor | float, weights: Tensor | None = None) -> Tensor:
    """Normalized energy of an isotropic Gaussian mixture:

        E(x) = −log Σₖ wₖ N(x; μₖ, σₖ² I)

    Args:
        x: points, shape (n, d).
        means: μₖ, shape (K, d).
        stds: σₖ, shape (K,), or one float for all components.
        weights: wₖ, shape (K,), non-negative, summing to 1; uniform when None.

    Returns:
        Energies, shape (n,); exp(−E) integrates to 1.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    means = torch.as_tensor(means, dtype=points(x).dtype, device=x.device)
    if means.dim() != 2:
        raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
    points(x, dim=means.shape[1])
    k, d = means.shape
    stds = torch.as_tensor(stds, dtype=x.dtype, device=x.device).expand(k)
    if not (stds > 0).all():
        raise ValueError(f"stds must be positive, got {stds.tolist()}")
    if weights is None:
        log_w = torch.full((k,), -math.log(k), dtype=x.dtype, device=x.device)
    else:
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        if weights.shape != (k,) or (weights < 0).any() or abs(weights.sum().item() - 1) > 1e-5:
            raise ValueError(f"weights must be (K,)=({k},), non-negative and sum to 1")
        log_w = weights.log()
    sq = (x[:, None, :] - means).square().sum(-1)      # (n, K); no |x|²+|m|²−2x·m cancellation
    log_comp = -0.5 * sq / stds**2 - d * torch.log(stds) - 0.5 * d * math.log(2 * math.pi)
    return -torch.logsumexp(log_w + log_comp, dim=1)


def double_well(x: Tensor, *, barrier: float = 1.0, center: float = 1.0) -> Tensor:
    """Double well along the first coordinate, quadratic in the others (unnormalized):

        E(x) = h (x₁²/c² − 1)² + ½ Σ_{i>1} xᵢ²

    Minima at x₁ = ±c with energy 0, a barrier of height h at x₁ = 0.

    Args:
        x: points, shape (n, d), d ≥ 1.
        barrier: h > 0.
        center: c > 0.

    Returns:
        Energies, shape (n,).

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    points(x, event_ndim=1)
    well = positive(barrier, "barrier") * ((x[:, 0] / positive(center, "center")) ** 2 - 1) ** 2
    return well + 0.5 * x[:, 1:].square().sum(dim=1)


def eight_gaussians(x: Tensor, *, radius: float = EIGHT_GAUSSIANS_RADIUS, std: float = EIGHT_GAUSSIANS_STD) -> Tensor:
    """Eight equal isotropic Gaussians on a circle (normalized):

        E(x) = −log (1/8) Σₖ N(x; r(cos πk/4, sin πk/4), σ² I)

    Defaults r = 4/√2, σ = 0.5/√2 (the usual toy of the flow literature).

    Args:
        x: points, shape (n, 2).

    Returns:
        Energies, shape (n,).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    points(x, dim=2)
    angles = torch.arange(8, dtype=x.dtype, device=x.device) * (math.pi / 4)
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)   # (8, 2)
    return gaussian_mixture(x, means, std)


def _two_moons_nodes(n_nodes: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    nodes, w = np.polynomial.legendre.leggauss(n_nodes)                  # on [−1, 1]
    t = torch.as_tensor((nodes + 1) * math.pi / 2, dtype=dtype, device=device)
    log_w = torch.as_tensor(np.log(w / 2), dtype=dtype, device=device)   # weights of the mean over t
    outer = torch.stack([t.cos(), t.sin()], dim=1)                        # (m, 2)
    inner = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)              # (m, 2)
    return torch.cat([outer, inner]), torch.cat([log_w, log_w]) - math.log(2)


def two_moons(x: Tensor, *, noise: float = TWO_MOONS_NOISE, n_nodes: int | None = None) -> Tensor:
    """Two interleaved half circles blurred by Gaussian noise (scikit-learn's geometry), normalized.

    The data: pick a moon with probability ½ and t ~ U[0, π]; the outer moon is
    (cos t, sin t), the inner one (1 − cos t, ½ − sin t); add N(0, σ² I). Its density is

        p(x) = ½ Σ_moons (1/π) ∫₀^π N(x; c(t), σ² I) dt,    E(x) = −log p(x),

    with the t-integral done by Gauss–Legendre quadrature on ``n_nodes`` nodes, by default
    ⌈8/σ⌉ (80 at σ = 0.1, where E agrees with a 400-node rule to 1e-6).

    Args:
        x: points, shape (n, 2).
        noise: σ > 0.
        n_nodes: quadrature nodes per moon.

    Returns:
        Energies, shape (n,).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    points(x, dim=2)
    n_nodes = max(16, math.ceil(8 / positive(noise, "noise"))) if n_nodes is None else count(n_nodes, "n_nodes")
    centres, log_w = _two_moons_nodes(n_nodes, x.dtype, x.device)        # (2m, 2), (2m,)
    sq = (x[:, None, :] - centres).square().sum(-1)                       # (n, 2m), exact differences
    log_comp = -0.5 * sq / noise**2 - math.log(2 * math.pi * noise**2)
    return -torch.logsumexp(log_w + log_comp, dim=1)


def banana(x: Tensor, *, curvature: float = BANANA_CURVATURE, shift: float = BANANA_SHIFT,
           std: float = BANANA_STD) -> Tensor:
    """A banana-shaped density, normalized: x₁ ~ N(0, 1), x₂ | x₁ ~ N(b x₁² − s, σ²):

        E(x) = x₁²/2 + (x₂ − b x₁² + s)²/(2σ²) + log(2πσ)

    (the map x ↦ (x₁, x₂ − b x₁²) has unit Jacobian, so log Z = 0 exactly).

    Args:
        x: points, shape (n, 2).
        curvature: b.
        shift: s.
        std: σ > 0.

    Returns:
        Energies, shape (n,).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    points(x, dim=2)
    positive(std, "std")
    x1, x2 = x[:, 0], x[:, 1]
    return 0.5 * x1**2 + (x2 - curvature * x1**2 + shift) ** 2 / (2 * std**2) + math.log(2 * math.pi * std)
