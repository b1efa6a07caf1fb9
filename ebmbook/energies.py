"""What an energy is, the analytic energies of the book, small learnable energies, and gradients.

The contract: an energy is any callable mapping a batch ``x`` of shape ``(n, *event_shape)``
to a tensor of shape ``(n,)``; lower energy means more probable, p(x) ∝ exp(−E(x)/T).

Every 2-D toy energy here is *normalized*: it is exactly −log p_data(x) of the matching
sampler in :mod:`ebmbook.data`, so its log Z is 0 and its grid entropy is the data entropy.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .device import check_generator

__all__ = [
    "Energy",
    "evaluate",
    "grad_energy",
    "value_and_grad",
    "score",
    "gaussian",
    "gaussian_log_partition",
    "gaussian_mixture",
    "double_well",
    "eight_gaussians",
    "two_moons",
    "rings",
    "checkerboard",
    "banana",
    "MLPEnergy",
    "ConvEnergy",
]

#: The energy contract, any callable that maps x of shape (n, *event_shape) to E(x) of
#: shape (n,), where lower energy means more probable.
Energy = Callable[[Tensor], Tensor]  # x: (n, *event_shape) -> E(x): (n,)

# Defaults of the 2-D toys; ebmbook.data draws from exactly these distributions
EIGHT_GAUSSIANS_RADIUS = 4 / math.sqrt(2)
EIGHT_GAUSSIANS_STD = 0.5 / math.sqrt(2)
TWO_MOONS_NOISE = 0.1
RINGS_RADII = (1.0, 2.0, 3.0)
RINGS_STD = 0.15
CHECKERBOARD_STD = 0.1
BANANA_CURVATURE = 0.35
BANANA_SHIFT = 1.75
BANANA_STD = 0.25


def evaluate(energy: Energy, x: Tensor, *, allow_nonfinite: bool = False) -> Tensor:
    """Call ``energy`` on ``x`` and check the contract.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: points, shape (n, *event_shape).
        allow_nonfinite: accept inf/NaN values (samplers reject such proposals).

    Returns:
        Energies, shape (n,).

    Raises:
        ValueError: the energy returned another shape, or non-finite values.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"x must have shape (n, *event_shape) with a batch dimension, got {tuple(x.shape)}; "
            "for a single point use x[None]"
        )
    e = energy(x)
    if not isinstance(e, Tensor) or e.shape != (x.shape[0],):
        got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        hint = " (sum over the event dimensions, or squeeze a trailing 1)" if isinstance(e, Tensor) else ""
        raise ValueError(f"energy must return shape ({x.shape[0]},) for x of shape {tuple(x.shape)}, got {got}{hint}")
    if not allow_nonfinite and not torch.isfinite(e).all():
        bad = (~torch.isfinite(e)).nonzero()[0].item()
        raise ValueError(
            f"energy returned a non-finite value ({e[bad].item()}) at row {bad}, x = {x[bad].tolist()}; "
            "check the energy's formula there, or restrict the points to where it is defined"
        )
    return e


def value_and_grad(energy: Energy, x: Tensor, *, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """E(x) and ∇ₓE(x) from one forward and one backward pass.

    Parameter ``.grad`` fields are never touched, so this is safe inside a training loop.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: points, shape (n, *event_shape).
        create_graph: keep the graph, so the result can be differentiated again
            (Hessians, or gradients that flow through a sampler step).

    Returns:
        (e, g): energies (n,) and input gradients (n, *event_shape); detached unless
        ``create_graph``. Non-finite energies are returned as they are (samplers reject them).

    See chapter: "Boltzmann distributions and the partition function".
    """
    with torch.enable_grad():
        x_in = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
        e = evaluate(energy, x_in, allow_nonfinite=True)
        (g,) = torch.autograd.grad(e.sum(), x_in, create_graph=create_graph)
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
    """The score s(x) = ∇ₓ log p(x) = −∇ₓE(x), shape (n, *event_shape).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return -grad_energy(energy, x, create_graph=create_graph)


def _check_points(x: Tensor, dim: int | None, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"{name} expects x of shape {want}, got {tuple(x.shape)}")


def _precision_from(covariance: Tensor | None, precision: Tensor | None, like: Tensor) -> Tensor:
    if (covariance is None) == (precision is None):
        raise ValueError("give exactly one of covariance= or precision=")
    m = covariance if precision is None else precision
    m = torch.as_tensor(m, dtype=like.dtype, device=like.device)      # invert in the points' precision
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"covariance/precision must be a square (d, d) matrix, got {tuple(m.shape)}")
    return torch.linalg.inv(m) if precision is None else m


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

    See chapter: "Boltzmann distributions and the partition function".
    """
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    _check_points(x, mean.shape[0] if mean.dim() == 1 else None, "gaussian")
    if mean.dim() != 1:
        raise ValueError(f"mean must have shape (d,), got {tuple(mean.shape)}")
    p = _precision_from(covariance, precision, x)
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

    See chapter: "Boltzmann distributions and the partition function".
    """
    _check_temperature(temperature)
    if (covariance is None) == (precision is None):
        raise ValueError("give exactly one of covariance= or precision=")
    m = torch.as_tensor(covariance if precision is None else precision, dtype=torch.float64)
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"covariance/precision must be a square (d, d) matrix, got {tuple(m.shape)}")
    sign, logdet = torch.linalg.slogdet(m)
    if sign <= 0:
        raise ValueError("the matrix must be positive definite")
    d = m.shape[0]
    logdet_cov = logdet if precision is None else -logdet
    return 0.5 * d * math.log(2 * math.pi * temperature) + 0.5 * logdet_cov


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")


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
    means = torch.as_tensor(means, dtype=x.dtype, device=x.device)
    if means.dim() != 2:
        raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
    _check_points(x, means.shape[1], "gaussian_mixture")
    k, d = means.shape
    stds = torch.as_tensor(stds, dtype=x.dtype, device=x.device).expand(k)
    if (stds <= 0).any():
        raise ValueError("stds must be positive")
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

    See chapter: "Boltzmann distributions and the partition function".
    """
    _check_points(x, None, "double_well")
    if barrier <= 0 or center <= 0:
        raise ValueError("barrier and center must be positive")
    well = barrier * ((x[:, 0] / center) ** 2 - 1) ** 2
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
    _check_points(x, 2, "eight_gaussians")
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
    _check_points(x, 2, "two_moons")
    if noise <= 0:
        raise ValueError(f"noise must be positive, got {noise}")
    n_nodes = n_nodes or max(16, math.ceil(8 / noise))
    centres, log_w = _two_moons_nodes(n_nodes, x.dtype, x.device)        # (2m, 2), (2m,)
    sq = (x[:, None, :] - centres).square().sum(-1)                       # (n, 2m), exact differences
    log_comp = -0.5 * sq / noise**2 - math.log(2 * math.pi * noise**2)
    return -torch.logsumexp(log_w + log_comp, dim=1)


def rings(x: Tensor, *, radii: Sequence[float] = RINGS_RADII, std: float = RINGS_STD) -> Tensor:
    """Concentric rings of equal weight, normalized.

    The data: pick a radius r uniformly from ``radii``, an angle θ ~ U[0, 2π), and add
    N(0, σ² I) to r(cos θ, sin θ). Averaging the Gaussian over θ gives, with ρ = |x|,

        p(x | r) = exp(−(ρ − r)²/(2σ²)) · I₀e(ρr/σ²) / (2πσ²),

    where I₀e(z) = e^{−z} I₀(z) is the scaled modified Bessel function; E = −log mean_r p(x | r).

    Args:
        x: points, shape (n, 2).
        radii: ring radii, each > 0.
        std: σ > 0.

    Returns:
        Energies, shape (n,).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check_points(x, 2, "rings")
    r = torch.as_tensor(radii, dtype=x.dtype, device=x.device)            # (K,)
    if r.dim() != 1 or (r <= 0).any() or std <= 0:
        raise ValueError("radii must be a list of positive numbers and std positive")
    rho = x.norm(dim=1, keepdim=True)                                     # (n, 1)
    log_ring = (-(rho - r) ** 2 / (2 * std**2)
                + torch.log(torch.special.i0e(rho * r / std**2))
                - math.log(2 * math.pi * std**2))                         # (n, K)
    return -(torch.logsumexp(log_ring, dim=1) - math.log(len(r)))


def _log_ndtr_diff(a: Tensor, b: Tensor) -> Tensor:
    """log(Φ(b) − Φ(a)) for a < b, stable in both tails."""
    flip = a > 0                                        # upper tail: Φ(b) − Φ(a) = Φ(−a) − Φ(−b)
    hi = torch.where(flip, -a, b)
    lo = torch.where(flip, -b, a)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi))


def checkerboard(x: Tensor, *, std: float = CHECKERBOARD_STD) -> Tensor:
    """A 4×4 checkerboard on [−2, 2]², uniform on its 8 dark unit squares, blurred by N(0, σ² I).

    The dark squares are those whose lower-left corner (i, j) has i + j even. Blurring a
    uniform square gives a product of normal-CDF differences, so, exactly,

        p(x) = (1/8) Σ_squares Πₐ [Φ((xₐ − lₐ)/σ) − Φ((xₐ − lₐ − 1)/σ)],   E = −log p.

    Args:
        x: points, shape (n, 2).
        std: σ > 0, the blur that makes the energy smooth.

    Returns:
        Energies, shape (n,).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check_points(x, 2, "checkerboard")
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    corners = _checkerboard_corners(x.dtype, x.device)                   # (8, 2)
    u = x[:, None, :] - corners                                           # (n, 8, 2)
    log_box = _log_ndtr_diff((u - 1) / std, u / std).sum(dim=2)           # (n, 8)
    return -(torch.logsumexp(log_box, dim=1) - math.log(8))


def _checkerboard_corners(dtype: torch.dtype, device: torch.device) -> Tensor:
    ij = [(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0]
    return torch.tensor(ij, dtype=dtype, device=device)


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

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _check_points(x, 2, "banana")
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    x1, x2 = x[:, 0], x[:, 1]
    return 0.5 * x1**2 + (x2 - curvature * x1**2 + shift) ** 2 / (2 * std**2) + math.log(2 * math.pi * std)


def _init_layer(layer: nn.Linear | nn.Conv2d, generator: torch.Generator) -> None:
    """Redraw a layer's weight and bias from ``generator`` with PyTorch's default bounds,
    U(−1/√fan_in, 1/√fan_in), where fan_in is the number of inputs of one output unit."""
    bound = 1 / math.sqrt(layer.weight[0].numel())
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            u = torch.empty(p.shape, device=generator.device, dtype=p.dtype)
            p.copy_(u.uniform_(-bound, bound, generator=generator))


def _spectral_norm(layer: nn.Module, generator: torch.Generator | None) -> nn.Module:
    """Wrap ``layer`` in spectral normalization, its power-iteration vectors drawn from ``generator``.

    PyTorch starts the power iteration from vectors u, v drawn from the global random state;
    with a generator they are drawn again from it (and the 15 warm-up iterations redone), so
    that the same seed gives the same network whatever the global state.
    """
    wrapped = nn.utils.parametrizations.spectral_norm(layer)
    if generator is not None:
        sn = wrapped.parametrizations.weight[0]
        with torch.no_grad():
            for vec in (sn._u, sn._v):
                fresh = torch.randn(vec.shape, generator=generator, device=generator.device, dtype=vec.dtype)
                vec.copy_(nn.functional.normalize(fresh, dim=0, eps=sn.eps))
            sn._power_method(sn._reshape_weight_to_matrix(wrapped.parametrizations.weight.original), 15)
    return wrapped


_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "softplus": nn.Softplus}


class MLPEnergy(nn.Module):
    """A small learnable energy: an MLP from (n, d) to (n,) with SiLU (Swish) activations.

        E_θ(x) = w_Lᵀ σ(… σ(W₁x + b₁) …) + b_L

    Args:
        dim: input dimension d.
        hidden: widths of the hidden layers.
        spectral_norm: wrap every linear layer in spectral normalization.
        generator: when given, the initial weights and biases are drawn from it, with
            PyTorch's default law for ``nn.Linear``, U(−1/√fan_in, 1/√fan_in), and so are the
            starting vectors of spectral normalization's power iteration; the same seed then
            gives the same network (on the generator's device), whatever the global random
            state. When None, PyTorch's global random state is used, as ``nn.Linear`` does.
        activation: "silu" (Swish, smooth, the default), "relu" or "softplus"; for 8x8 images
            flatten them to d = 64 first.

    See chapter: "Boltzmann distributions and the partition function".
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128), *, spectral_norm: bool = False,
                 generator: torch.Generator | None = None, activation: str = "silu"):
        super().__init__()
        if dim < 1 or any(h < 1 for h in hidden):
            raise ValueError("dim and every hidden width must be positive")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if generator is not None:
            check_generator(generator)
        widths = [dim, *hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            lin = nn.Linear(a, b)
            if generator is not None:
                _init_layer(lin, generator)
            layers.append(_spectral_norm(lin, generator) if spectral_norm else lin)
            if i < len(widths) - 2:
                layers.append(_ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        _check_points(x, self.dim, "MLPEnergy")
        return self.net(x).squeeze(1)                    # (n, 1) -> (n,)


class ConvEnergy(nn.Module):
    """A small learnable energy for 1×8×8 images: two 3×3 convolutions, a stride-2 one, a linear head.

        E_θ(x) = wᵀ flatten(σ(conv₃(σ(conv₂(σ(conv₁ x)))))) + b,   σ = SiLU

    Args:
        channels: feature maps of the convolutions.
        spectral_norm: wrap every layer in spectral normalization.
        generator: when given, every weight and bias is drawn from it with the default law
            U(−1/√fan_in, 1/√fan_in), and so are spectral normalization's power-iteration
            vectors, so the same seed gives the same network whatever the global random state.

    Input shape (n, 1, 8, 8); output (n,).

    See chapter: "Training by contrastive divergence".
    """

    def __init__(self, channels: int = 32, *, spectral_norm: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if generator is not None:
            check_generator(generator)
        c = channels
        layers = [nn.Conv2d(1, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1),
                  nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.Linear(2 * c * 16, 1)]
        wrapped: list[nn.Module] = []
        for layer in layers:
            if generator is not None:
                _init_layer(layer, generator)
            wrapped.append(_spectral_norm(layer, generator) if spectral_norm else layer)
        self.conv = nn.Sequential(wrapped[0], nn.SiLU(), wrapped[1], nn.SiLU(), wrapped[2], nn.SiLU())
        self.head = wrapped[3]

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"ConvEnergy expects images of shape (n, 1, 8, 8), got {got}; "
                             "reshape flat digits with x.view(-1, 1, 8, 8)")
        h = self.conv(x)                                 # (n, 2c, 4, 4)
        return self.head(h.flatten(1)).squeeze(1)        # (n,)
