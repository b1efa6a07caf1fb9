"""Checkers of the chapter "Stabilizers and improved contrastive divergence".

See chapter: "Stabilizers and improved contrastive divergence" (chapters/improved_cd.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from .compare import CheckResult, compare

__all__ = ["check_kl_term"]


class _Shifted(nn.Module):
    """E_θ(x) = ‖x − θ‖²/2 with a learnable scalar θ: the model N(θ, I)."""

    def __init__(self, theta: Tensor):
        super().__init__()
        self.theta = nn.Parameter(theta.clone())

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (x - self.theta).square().sum(1)


def _kl_case(theta: float, x: Tensor, xi: Tensor, step_size: float) -> dict:
    return dict(theta=torch.tensor(theta, dtype=torch.float64), x=x, xi=xi, step_size=step_size)


def _kl_value_and_grad(fn: Callable) -> Callable:
    """Run a KL term on x′ = x − η∇ₓE_θ(x) + √(2η)ξ (ξ given) and return (L, ∂L/∂θ) as a (2,) tensor."""
    def run(theta, x, xi, step_size):
        energy = _Shifted(theta)
        x_next = x - step_size * (x - energy.theta) + math.sqrt(2 * step_size) * xi   # carries θ
        loss = fn(energy, x_next)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            return loss
        (g,) = torch.autograd.grad(loss.reshape(()), energy.theta, allow_unused=True)
        g = torch.zeros((), dtype=torch.float64) if g is None else g
        return torch.stack([loss.reshape(()).double(), g.double()]).detach()
    return run


def _kl_reference(energy, x_model):
    theta_bar = energy.theta.detach()                                  # E_θ̄: θ frozen, x′ not
    return 0.5 * (x_model - theta_bar).square().sum(1).mean()


def _hint_kl(got, want, inputs):
    if not isinstance(got, Tensor) or got.shape != (2,):
        return "return a single number: the mean frozen energy of the samples, mean E_θ̄(x′)"
    x_next = inputs["x"] - inputs["step_size"] * (inputs["x"] - inputs["theta"]) \
        + math.sqrt(2 * inputs["step_size"]) * inputs["xi"]
    direct = -(x_next - inputs["theta"]).sum(1).mean()                 # ∂θ mean E_θ(x′) at fixed x′
    if torch.allclose(got, -want, atol=1e-8, rtol=1e-6):
        return ("the sign is flipped: improved CD minimizes L_KL = mean E_θ̄(x′), so that the last step "
                "carries the samples to lower energy")
    if torch.allclose(got[0], want[0], atol=1e-8, rtol=1e-6) and abs(got[1] - want[1] - direct) < 1e-8:
        return ("θ also enters through the energy evaluated at x′; freeze the parameters (E_θ̄), so that θ "
                "gets gradient only through the samples")
    if torch.allclose(got[0], want[0], atol=1e-8, rtol=1e-6) and abs(got[1]) < 1e-12:
        return "the value is right but θ gets no gradient: keep the graph of x′ (do not detach the samples)"
    return None


def check_kl_term(fn: Callable[[nn.Module, Tensor], Tensor]) -> CheckResult:
    """Check a student's KL term of improved contrastive divergence (without the entropy):

        L_KL(θ) = mean E_θ̄(x′),   x′ = x − η∇ₓE_θ(x) + √(2η) ξ,   θ̄ = θ frozen

    ``fn(energy, x_model)`` returns a scalar tensor; ``energy`` is an ``nn.Module`` and
    ``x_model`` the output of a differentiable Langevin step, which depends on θ. The check
    compares the value and the gradient in θ on E_θ(x) = ‖x − θ‖²/2, where the reference
    gradient is η · mean(x′ − θ). Hints name a flipped sign, unfrozen parameters and detached
    samples.

    See chapter: "Stabilizers and improved contrastive divergence" (chapters/improved_cd.ipynb).
    """
    g = torch.Generator().manual_seed(0)

    def pts(n, d, scale=1.0):
        return scale * torch.randn(n, d, generator=g, dtype=torch.float64)

    cases = [
        ("1-D, data at the origin, model shifted to θ = 1", _kl_case(1.0, pts(16, 1), pts(16, 1), 0.1)),
        ("2-D, wide samples, θ = −0.5", _kl_case(-0.5, pts(8, 2, 2.0), pts(8, 2), 0.05)),
    ]
    return compare(_kl_value_and_grad(fn), _kl_value_and_grad(_kl_reference), cases, name="kl_term",
                   atol=1e-8, rtol=1e-6, hints=[_hint_kl])
