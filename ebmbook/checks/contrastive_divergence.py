"""Checkers of the chapter "Training by contrastive divergence".

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .compare import CheckResult, compare

__all__ = ["check_cd_loss"]


def _cd_case(theta: float, x_data: Tensor, x_start: Tensor, step_size: float) -> dict:
    """Inputs for a CD-loss check: E_θ(x) = θ‖x‖²/2 and samples x⁻ = x − η∇ₓE_θ(x) that depend on θ."""
    return dict(theta=torch.tensor(theta, dtype=torch.float64), x_data=x_data, x_start=x_start,
                step_size=step_size)


def _cd_value_and_grad(fn: Callable) -> Callable:
    """Run a CD loss on the case's energy and return (loss, ∂loss/∂θ) as a (2,) tensor."""
    def run(theta, x_data, x_start, step_size):
        theta = theta.clone().requires_grad_(True)

        def energy(x):
            return 0.5 * theta * x.flatten(1).square().sum(1)

        x_model = x_start - step_size * theta * x_start            # one gradient step: carries θ
        loss = fn(energy, x_data, x_model)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            return loss
        (g,) = torch.autograd.grad(loss.reshape(()), theta, allow_unused=True)
        g = torch.zeros((), dtype=torch.float64) if g is None else g
        return torch.stack([loss.reshape(()).double(), g.double()]).detach()
    return run


def _cd_reference(energy, x_data, x_model):
    return energy(x_data).mean() - energy(x_model.detach()).mean()


def _hint_cd(got, want, inputs):
    if not isinstance(got, Tensor) or got.shape != (2,):
        return "return a single number: the scalar loss mean E(x⁺) − mean E(x⁻)"
    if torch.allclose(got, -want, atol=1e-8, rtol=1e-6):
        return ("the sign is flipped: minimizing the loss must push data energies down and the "
                "energies of the model's samples up, L = mean E(x⁺) − mean E(x⁻)")
    if torch.allclose(got[0], want[0], atol=1e-8, rtol=1e-6):
        return ("the value is right but the gradient is not: the samples depend on θ through the "
                "sampler, and CD treats them as constants; use energy(x_model.detach())")
    return None


def check_cd_loss(fn: Callable[[Callable, Tensor, Tensor], Tensor]) -> CheckResult:
    """Check a student's contrastive-divergence loss:

        L(θ) = mean E_θ(x⁺) − mean E_θ(x⁻),   x⁻ a constant

    ``fn(energy, x_data, x_model)`` returns a scalar tensor. The check compares the value and
    the gradient in θ of the energy E_θ(x) = θ‖x‖²/2, with samples made by a gradient step,
    so that they depend on θ unless they are detached.

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    g = torch.Generator().manual_seed(0)

    def pts(n, scale=1.0):
        return scale * torch.randn(n, 2, generator=g, dtype=torch.float64)

    same = pts(10)
    cases = [
        ("samples wider than the data", _cd_case(1.0, pts(16), pts(16, 2.0), 0.1)),
        ("more samples than data points", _cd_case(0.5, pts(8), pts(32, 0.5), 0.2)),
        ("samples equal to the data (zero loss)", _cd_case(2.0, same, same.clone(), 0.0)),
    ]
    return compare(_cd_value_and_grad(fn), _cd_value_and_grad(_cd_reference), cases, name="cd_loss",
                   atol=1e-8, rtol=1e-6, hints=[_hint_cd])

