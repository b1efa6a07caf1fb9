"""Training without samples from the model: score matching and noise-contrastive estimation.

Maximum likelihood needs samples of p_θ (contrastive divergence) because of the normalizer
Z(θ). The **score** s_θ(x) = ∇ₓ log p_θ(x) = −∇ₓE_θ(x) does not contain it at all: Z(θ) does
not depend on x, so ∇ₓ log Z(θ) = 0 exactly. Score matching fits the model's score to the
data's; noise-contrastive estimation turns density estimation into classifying data against
noise of a known density, and learns log Z as one more parameter.

* :func:`exact_score_matching` (Hyvärinen 2005): mean[½‖∇ₓE‖² − tr ∇ₓ²E]. The Hessian trace
  costs one input-gradient backward pass per dimension: d passes for x in ℝᵈ.
* :func:`sliced_score_matching` (Song et al. 2019): the trace replaced by vᵀ(∇ₓ²E)v for random
  projections v, one extra backward pass per projection whatever d.
* :func:`denoising_score_matching` (Vincent 2011): the score at noisy points x̃ = x + σε fitted
  to the noise kernel's score −ε/σ; over a set of noise levels, a noise-conditional energy
  E(x̃, σ) and the weights σ² of Song & Ermon (2019).
* :func:`nce_loss` (Gutmann & Hyvärinen 2010): logistic regression of data against noise with
  the logit −E(x) − log Z − log p_noise(x) − log ν.

Each function returns a scalar to minimize whose θ-gradient is the training gradient (graphs
are kept), takes points of any event shape (n, *event_shape) on any device, and draws every
random number from the ``generator`` it is given.

See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ._contracts import choice, count, like, points, positive
from .device import check_generator
from .energies import Energy, evaluate

__all__ = ["exact_score_matching", "sliced_score_matching", "denoising_score_matching", "nce_loss"]


def _tracked_grad(energy: Energy, x: Tensor) -> tuple[Tensor, Tensor]:
    """(x as a leaf that requires grad, ∇ₓE(x) with its graph kept)."""
    x = points(x, "x").detach().requires_grad_(True)
    e = evaluate(energy, x)
    (g,) = torch.autograd.grad(e.sum(), x, create_graph=True)
    return x, g


def _grad_of(y: Tensor, x: Tensor) -> Tensor:
    """∇ₓ Σ y with the graph kept; zeros where y does not depend on x (an energy linear in x)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True, allow_unused=True, materialize_grads=True)
    return g


def exact_score_matching(energy: Energy, x: Tensor) -> Tensor:
    """Hyvärinen's score-matching objective, with the exact Hessian trace.

        J(θ) = mean over x of  ½‖∇ₓE_θ(x)‖² − tr ∇ₓ²E_θ(x)

    It equals the Fisher divergence ½ E‖s_θ − s_data‖² up to a constant that does not depend
    on θ (integration by parts; the density must vanish at the boundary of its domain). The
    trace takes one backward pass per input dimension, d in all for x of d = prod(event_shape)
    numbers, so this is for small d; :func:`sliced_score_matching` costs one pass per projection.

    Args:
        energy: callable, (n, *event_shape) -> (n,), twice differentiable in x.
        x: data, shape (n, *event_shape).

    Returns:
        A 0-dim tensor.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    x, g = _tracked_grad(energy, x)
    flat = g.flatten(1)                                                   # (n, d)
    trace = torch.zeros(x.shape[0], dtype=flat.dtype, device=x.device)
    for i in range(flat.shape[1]):                                        # one backward pass per dimension
        trace = trace + _grad_of(flat[:, i], x).flatten(1)[:, i]
    return (0.5 * flat.square().sum(1) - trace).mean()


def sliced_score_matching(energy: Energy, x: Tensor, *, generator: torch.Generator, n_projections: int = 1,
                          projection: str = "gaussian", variance_reduced: bool = True) -> Tensor:
    """Sliced score matching: the Hessian trace of :func:`exact_score_matching` replaced by random projections.

        J(θ) = mean over x and v of  −vᵀ(∇ₓ²E_θ)v + ½(vᵀ∇ₓE_θ)²       (variance_reduced=False)
                                     −vᵀ(∇ₓ²E_θ)v + ½‖∇ₓE_θ‖²         (variance_reduced=True)

    For projections with E[v vᵀ] = I (standard Gaussian, or Rademacher ±1 entries) both forms
    are unbiased for the exact objective; the second replaces ½(vᵀ∇E)² by its expectation over v,
    which removes part of the variance. Cost: one backward pass for ∇ₓE and one per projection.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: data, shape (n, *event_shape).
        generator: source of the projections, on x's device.
        n_projections: projections per point, ≥ 1.
        projection: "gaussian" or "rademacher".
        variance_reduced: use the second form above.

    Returns:
        A 0-dim tensor.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    n_projections = count(n_projections, "n_projections")
    choice(projection, "projection", ("gaussian", "rademacher"))
    x, g = _tracked_grad(energy, x)
    check_generator(generator, x.device)
    total = torch.zeros(x.shape[0], dtype=g.dtype, device=x.device)
    for _ in range(n_projections):
        v = torch.randn(x.shape, generator=generator, device=x.device, dtype=g.dtype)
        if projection == "rademacher":
            v = v.sign()
        gv = (g * v).flatten(1).sum(1)                                    # vᵀ∇E, (n,)
        vhv = (_grad_of(gv, x) * v).flatten(1).sum(1)                     # vᵀ(∇²E)v, (n,)
        square = g.flatten(1).square().sum(1) if variance_reduced else gv.square()
        total = total + 0.5 * square - vhv
    return (total / n_projections).mean()


def denoising_score_matching(energy: Callable, x: Tensor, *, sigma: float | Tensor,
                             generator: torch.Generator) -> Tensor:
    """Denoising score matching: fit the score at noisy points to the score of the noise kernel.

        x̃ = x + σ ε,  ε ~ N(0, I):    J(θ) = ½ mean ‖σ^w (∇ₓE_θ(x̃) − ε/σ)‖²

    The kernel N(x, σ²I) has the score −(x̃ − x)/σ² = −ε/σ, and s_θ = −∇E_θ. At one level
    (``sigma`` a number, w = 0) the optimum is the score of the noisy data distribution, not
    of the data: for Gaussian data N(μ, Σ) the optimal quadratic energy has precision
    (Σ + σ²I)⁻¹. Over a set of levels (``sigma`` a 1-D tensor) each point draws a level
    uniformly, the energy is **noise-conditional**, called as ``energy(x̃, sigma)`` with sigma of
    shape (n,), and the squared error is weighted by σ² (w = 1), as in Song & Ermon (2019).

    Random draws, in order: the level indices (several levels only), then ε.

    Args:
        energy: (n, *event_shape) -> (n,), or with several levels (n, *event_shape), (n,) -> (n,).
        x: data, shape (n, *event_shape).
        sigma: the noise level σ > 0, or a 1-D tensor of levels, all > 0.
        generator: source of the levels and the noise, on x's device.

    Returns:
        A 0-dim tensor.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    x = points(x, "x").detach()
    check_generator(generator, x.device)
    n = x.shape[0]
    if isinstance(sigma, Tensor):
        if sigma.dim() != 1 or len(sigma) == 0 or not bool((torch.isfinite(sigma) & (sigma > 0)).all()):
            raise ValueError(f"sigma given as a tensor must be a 1-D tensor of positive noise levels, got {sigma}")
        levels = sigma.to(device=x.device, dtype=x.dtype)[torch.randint(len(sigma), (n,), generator=generator,
                                                                        device=x.device)]
        scale = levels.view(n, *[1] * (x.dim() - 1))                      # (n, 1, …) for broadcasting
        call = lambda z: energy(z, levels)
    else:
        scale = positive(sigma, "sigma", "the noise level must be positive, e.g. 0.1")
        call = energy
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy = (x + scale * eps).requires_grad_(True)
    e = call(noisy)
    if not isinstance(e, Tensor) or e.shape != (n,):
        raise ValueError(f"energy must return shape ({n},), got {getattr(e, 'shape', type(e).__name__)}")
    if not bool(torch.isfinite(e).all()):
        raise ValueError("the energy is not finite at some noisy points x + σε; check its formula there, or use "
                         "smaller noise levels")
    (g,) = torch.autograd.grad(e.sum(), noisy, create_graph=True)
    residual = g - eps / scale                                            # ∇E(x̃) − ε/σ
    if isinstance(sigma, Tensor):
        residual = scale * residual                                       # weight σ²
    return 0.5 * residual.flatten(1).square().sum(1).mean()


def nce_loss(energy: Energy, x_data: Tensor, x_noise: Tensor, *, noise_log_prob, log_z: float | Tensor) -> Tensor:
    """Noise-contrastive estimation: logistic regression of data against noise, with log Z learned.

        G(x) = −E_θ(x) − log Z − log p_n(x) − log ν,   ν = m / n,
        J(θ, log Z) = −mean over data of log σ(G(x)) − ν · mean over noise of log σ(−G(y))

    The model is log p_θ(x) = −E_θ(x) − log Z with log Z a free parameter (pass a learnable
    0-dim tensor). With enough data the minimum is at p_θ = p_data, where log Z equals the
    log-partition function of E_θ. The noise must cover the data's support and have a
    known log-density p_n.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x_data: data, shape (n, *event_shape).
        x_noise: m samples of the noise, shape (m, *event_shape).
        noise_log_prob: the noise's log-density, a callable (m, *event_shape) -> (m,) or an
            object with ``log_prob`` such as a ``torch.distributions`` distribution.
        log_z: log Z, a number or a 0-dim tensor (e.g. ``nn.Parameter(torch.zeros(()))``).

    Returns:
        A 0-dim tensor.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    like(points(x_data, "x_data"), points(x_noise, "x_noise"), ("x_data", "x_noise"))
    log_p_noise = getattr(noise_log_prob, "log_prob", noise_log_prob)
    if not callable(log_p_noise):
        raise TypeError("noise_log_prob must be the noise's log-density: a callable (m, *event_shape) -> (m,) or "
                        f"a distribution with log_prob, e.g. torch.distributions.MultivariateNormal; got "
                        f"{type(noise_log_prob).__name__}")
    if isinstance(log_z, Tensor) and log_z.dim() != 0:
        raise ValueError(f"log_z must be a number or a 0-dim tensor, got shape {tuple(log_z.shape)}")
    nu = x_noise.shape[0] / x_data.shape[0]                               # noise points per data point

    def logit(x: Tensor) -> Tensor:
        lp = log_p_noise(x)
        if not isinstance(lp, Tensor) or lp.shape != (x.shape[0],):
            raise ValueError(f"noise_log_prob must return shape ({x.shape[0]},), got "
                             f"{getattr(lp, 'shape', type(lp).__name__)}; sum over the event dimensions")
        return -evaluate(energy, x) - log_z - lp.to(x.dtype) - math.log(nu)

    return (-torch.nn.functional.logsigmoid(logit(x_data)).mean()
            - nu * torch.nn.functional.logsigmoid(-logit(x_noise)).mean())
