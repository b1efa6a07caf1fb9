"""Checkers of the objectives in ``ebmbook.score_matching``: a student's DSM loss, sliced SM and NCE loss.

Every random number is an input (the noise ε, the projections v, the noise samples), so each
check compares values exactly; the energies are quadratics whose scores and Hessians are known.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .compare import CheckResult, compare

__all__ = ["check_dsm_loss", "check_sliced_score_matching", "check_nce_loss"]


def _quadratic(a: Tensor) -> Callable[[Tensor], Tensor]:
    """E(x) = ½ xᵀ A x on flattened points: ∇E = Ax, ∇²E = A."""
    return lambda x: 0.5 * ((x.flatten(1) @ a) * x.flatten(1)).sum(1)


def _cases(seed: int, widths=(8, 3)) -> list[tuple[Tensor, Tensor, Tensor]]:
    """(A, x, r): a symmetric positive definite A, points x and standard normal draws r, float64."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in widths:
        b = torch.randn(2, 2, generator=g, dtype=torch.float64)
        out.append((b @ b.T + 0.5 * torch.eye(2, dtype=torch.float64),
                    torch.randn(n, 2, generator=g, dtype=torch.float64),
                    torch.randn(n, 2, generator=g, dtype=torch.float64)))
    return out


def _scalar(fn: Callable) -> Callable:
    """Wrap a student's function so that a non-scalar answer reaches the hint as it is."""
    def run(*args):
        out = fn(*args)
        return out.reshape(()).detach().double() if isinstance(out, Tensor) and out.numel() == 1 else out
    return run


def _dsm_with_target(energy, x, sigma, eps, target):
    """½ mean ‖∇ₓE(x + σε) − target‖²."""
    noisy = (x + sigma * eps).requires_grad_(True)
    (g,) = torch.autograd.grad(energy(noisy).sum(), noisy)
    return 0.5 * (g - target).flatten(1).square().sum(1).mean()


def _dsm_reference(energy, x, sigma, eps):
    return _dsm_with_target(energy, x, sigma, eps, eps / sigma)


def _hint_dsm(got, want, inputs):
    if not isinstance(got, Tensor) or got.dim() != 0:
        return "return a single number: ½ mean ‖∇ₓE(x + σε) − ε/σ‖²"
    energy, x, sigma, eps = inputs.values()
    wrong = [(eps / sigma**2, "the target divides ε by σ², but x̃ − x = σε, so the kernel's score "
                             "−(x̃ − x)/σ² is −ε/σ"),
             (eps * sigma, "the target multiplies ε by σ; the kernel's score is −(x̃ − x)/σ² = −ε/σ"),
             (-eps / sigma, "the sign of the target is flipped: the score s = −∇E matches −ε/σ, so ∇E(x̃) "
                            "matches +ε/σ")]
    for target, hint in wrong:
        if torch.isclose(got, _dsm_with_target(energy, x, sigma, eps, target), rtol=1e-6, atol=1e-9):
            return hint
    if torch.isclose(got, 2 * want, rtol=1e-6):
        return "missing the factor ½"
    return None


def check_dsm_loss(fn: Callable) -> CheckResult:
    """Check a student's single-level denoising score-matching loss, with the noise given:

        L = ½ mean ‖∇ₓE(x + σε) − ε/σ‖²

    ``fn(energy, x, sigma, eps)`` returns a scalar tensor; ``eps`` has x's shape. The hints
    recompute the usual mistakes: ε/σ² or σε instead of ε/σ, the sign of the target, a missing ½.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    cases = [(f"{len(x)} points, σ = {s}", dict(energy=_quadratic(a), x=x, sigma=s, eps=r))
             for (a, x, r), s in zip(_cases(0), (0.1, 2.0))]
    return compare(_scalar(fn), _dsm_reference, cases, name="dsm_loss", atol=1e-9, rtol=1e-7, hints=[_hint_dsm])


def _projections(energy, x, v):
    """Per point: vᵀ∇E, vᵀ(∇²E)v and ‖∇E‖², each (n,)."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    gv = (g * v).flatten(1).sum(1)
    (hv,) = torch.autograd.grad(gv.sum(), x)
    return gv.detach(), (hv * v).flatten(1).sum(1), g.detach().flatten(1).square().sum(1)


def _sliced_reference(energy, x, v):
    gv, vhv, _ = _projections(energy, x, v)
    return (-vhv + 0.5 * gv.square()).mean()


def _hint_sliced(got, want, inputs):
    if not isinstance(got, Tensor) or got.dim() != 0:
        return "return a single number: mean of −vᵀ(∇²E)v + ½(vᵀ∇E)²"
    gv, vhv, g2 = _projections(*inputs.values())
    if torch.isclose(got, (vhv + 0.5 * gv.square()).mean(), rtol=1e-6, atol=1e-9):
        return ("the sign of the Hessian term is flipped: with s = −∇E, tr ∇s = −tr ∇²E, so the term is "
                "−vᵀ(∇²E)v")
    if torch.isclose(got, (-vhv + 0.5 * g2).mean(), rtol=1e-6, atol=1e-9):
        return ("that is the variance-reduced form, ½‖∇E‖² in place of ½(vᵀ∇E)²: also unbiased, but the "
                "check asks for the basic form")
    return None


def check_sliced_score_matching(fn: Callable) -> CheckResult:
    """Check a student's sliced score-matching objective (the basic form), with the projections given:

        J = mean over points of  −vᵀ(∇ₓ²E)v + ½(vᵀ∇ₓE)²,   one projection v per point

    ``fn(energy, x, v)`` returns a scalar tensor; ``v`` has x's shape. The hints recompute the
    sign of the Hessian term and the variance-reduced form.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    cases = [(f"{len(x)} points", dict(energy=_quadratic(a), x=x, v=r)) for a, x, r in _cases(1)]
    return compare(_scalar(fn), _sliced_reference, cases, name="sliced_score_matching", atol=1e-9, rtol=1e-7,
                   hints=[_hint_sliced])


def _nce(energy, x_data, x_noise, noise_log_prob, log_z, *, with_nu=True):
    nu = len(x_noise) / len(x_data) if with_nu else 1.0

    def logit(x):
        return -energy(x) - log_z - noise_log_prob(x) - math.log(nu)

    return (-torch.nn.functional.logsigmoid(logit(x_data)).mean()
            - nu * torch.nn.functional.logsigmoid(-logit(x_noise)).mean())


def _nce_reference(energy, x_data, x_noise, noise_log_prob, log_z):
    return _nce(energy, x_data, x_noise, noise_log_prob, log_z)


def _hint_nce(got, want, inputs):
    if not isinstance(got, Tensor) or got.dim() != 0:
        return "return a single number: the logistic loss of data against noise"
    energy, x_data, x_noise, lp, log_z = inputs.values()
    if torch.isclose(got, _nce(energy, x_noise, x_data, lp, log_z), rtol=1e-6, atol=1e-9):
        return "data and noise are swapped: the data get the logit G(x), the noise the logit −G(y)"
    if len(x_noise) != len(x_data) and torch.isclose(got, _nce(energy, x_data, x_noise, lp, log_z, with_nu=False),
                                                     rtol=1e-6, atol=1e-9):
        return (f"with ν = {len(x_noise) / len(x_data):g} noise points per data point the logit needs − log ν "
                "and the noise term the weight ν")
    return None


def check_nce_loss(fn: Callable) -> CheckResult:
    """Check a student's noise-contrastive estimation loss:

        G(x) = −E(x) − log Z − log p_n(x) − log ν,  ν = m/n
        J = −mean over data of log σ(G(x)) − ν · mean over noise of log σ(−G(y))

    ``fn(energy, x_data, x_noise, noise_log_prob, log_z)`` returns a scalar tensor. The hints
    recompute data and noise swapped and a missing ν.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    lp = lambda y: -0.5 * (y / 2).square().sum(1) - math.log(8 * math.pi)   # N(0, 4I) in 2-D
    cases = [(f"{len(x)} data points, {2 * len(x)} noise points",
              dict(energy=_quadratic(a), x_data=x, x_noise=2 * torch.cat([r, r.flip(0)]), noise_log_prob=lp,
                   log_z=0.3)) for a, x, r in _cases(2)]
    cases.append(("as many noise points as data", dict(cases[0][1], x_noise=cases[0][1]["x_noise"][:8])))
    return compare(_scalar(fn), _nce_reference, cases, name="nce_loss", atol=1e-9, rtol=1e-7, hints=[_hint_nce])
