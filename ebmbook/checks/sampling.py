"""Checkers of the chapter "Sampling from an energy": the steps are deterministic given their noise.

See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import energies
from .compare import CheckResult, compare

__all__ = ["check_mh_accept", "check_langevin_step", "check_mala_step"]


def _quadratic_2d(x):
    return 0.5 * x.square().sum(1)


def _tilted_2d(x):
    return 0.5 * (x[:, 0] - 1.0).square() + 2.0 * x[:, 1].square() + 0.3 * x[:, 0] * x[:, 1] + 900.0


def _sampling_cases(with_u: bool) -> list[tuple[str, dict]]:
    """Inputs shared by the sampling checkers: positions, proposals (or noise) and uniforms, float64."""
    g = torch.Generator().manual_seed(1)

    def r(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    cases = []
    for desc, energy, scale in [("E = ‖x‖²/2", _quadratic_2d, 1.0),
                                ("the eight-Gaussians ring", energies.eight_gaussians, 2.0),
                                ("a tilted quadratic shifted up by 900 (exp(−E) underflows)", _tilted_2d, 1.0)]:
        x = r(64, 2, scale=scale)
        if with_u:
            u = torch.rand(64, generator=g, dtype=torch.float64)
            cases.append((desc, dict(energy=energy, x=x, x_proposed=x + r(64, 2, scale=0.7), u=u)))
        else:
            cases.append((desc, dict(energy=energy, x=x, step_size=0.05, noise=r(64, 2))))
    return cases


def _mh_accept_reference(energy, x, x_proposed, u):
    log_alpha = (energy(x) - energy(x_proposed)).clamp(max=0.0)     # (n,) log acceptance probability
    accepted = torch.log(u) < log_alpha                               # NaN proposals compare False
    return torch.where(accepted[:, None], x_proposed, x)


def _hint_mh(got, want, inputs):
    if not isinstance(got, Tensor) or got.shape != inputs["x"].shape:
        return "return the next positions, shape (n, d): x_proposed where accepted, else x"
    energy, x, xp, u = inputs["energy"], inputs["x"], inputs["x_proposed"], inputs["u"]
    delta = energy(xp) - energy(x)                                    # (n,) E(x′) − E(x)

    def same(accepted):
        return torch.equal(got, torch.where(accepted[:, None], xp, x))

    if same(torch.log(u) < delta.clamp(max=0.0)):
        return ("the sign is flipped: a move downhill in energy must always be accepted, "
                "α = min(1, exp(−(E(x′) − E(x))))")
    if same(u > torch.exp(-delta).clamp(max=1.0)):
        return "accept when u < α (probability α), not when u > α"
    if same(torch.ones_like(u, dtype=torch.bool)):
        return "every proposal was accepted: compare u with the acceptance probability"
    if not torch.isfinite(torch.exp(-energy(x))).all() or (torch.exp(-energy(x)) == 0).any():
        return ("exp(−E) underflowed or overflowed: work with the energy difference, "
                "log α = min(0, E(x) − E(x′)), never with exp(−E) itself")
    if torch.equal(got, x):
        return "no proposal was accepted: accept when u < min(1, exp(−(E(x′) − E(x))))"
    return None


def check_mh_accept(fn: Callable[[Callable, Tensor, Tensor, Tensor], Tensor]) -> CheckResult:
    """Check a student's Metropolis–Hastings accept/reject step for a symmetric proposal:

        α = min(1, exp(−(E(x′) − E(x)))),   x_next = x′ if u < α else x

    ``fn(energy, x, x_proposed, u)`` takes an energy ((n, d) -> (n,)), positions and proposals of
    shape (n, d) and uniforms u of shape (n,), and returns the next positions, shape (n, d). The
    randomness is the input u, so the step is deterministic and compared exactly (float64).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return compare(fn, _mh_accept_reference, _sampling_cases(with_u=True), name="mh_accept",
                   atol=0.0, rtol=0.0, hints=[_hint_mh])


def _langevin_reference(energy, x, step_size, noise):
    g = energies.grad_energy(energy, x)                               # (n, d)
    return x - step_size * g + math.sqrt(2.0 * step_size) * noise


def _hint_langevin(got, want, inputs):
    if not isinstance(got, Tensor) or got.shape != inputs["x"].shape:
        return "return the next positions, shape (n, d)"
    energy, x, eta, xi = inputs["energy"], inputs["x"], inputs["step_size"], inputs["noise"]
    g = energies.grad_energy(energy, x)

    def near(v):
        return torch.allclose(got.double(), v, atol=1e-8, rtol=1e-6)

    if near(x + eta * g + math.sqrt(2 * eta) * xi):
        return "the drift goes the wrong way: step down the energy, x − η∇E(x)"
    for scale, what in [(math.sqrt(eta), "√η"), (eta, "η"), (2 * eta, "2η"), (1.0, "1")]:
        if near(x - eta * g + scale * xi):
            return f"the noise is scaled by {what}; it must be √(2η) for the chain to target exp(−E)"
    if near(x - eta * g):
        return "the noise is missing: add √(2η) ξ, otherwise this is gradient descent"
    if near(x - eta * g / 2 + math.sqrt(eta) * xi):
        return ("this is the x − ½η∇E(x) + √η ξ convention, whose step η is this book's η/2; "
                "this book writes x − η∇E(x) + √(2η) ξ")
    return None


def check_langevin_step(fn: Callable[[Callable, Tensor, float, Tensor], Tensor]) -> CheckResult:
    """Check a student's unadjusted Langevin (ULA) step with the noise given:

        x′ = x − η ∇E(x) + √(2η) ξ

    ``fn(energy, x, step_size, noise)`` takes an energy ((n, d) -> (n,)), positions x (n, d),
    η > 0 and the standard normal noise ξ (n, d), and returns x′, shape (n, d). The noise is an
    input, so the step is deterministic; compared in float64.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return compare(fn, _langevin_reference, _sampling_cases(with_u=False), name="langevin_step",
                   atol=1e-8, rtol=1e-6, hints=[_hint_langevin])



def _mala_parts(energy, x, step_size, noise):
    """The proposal y and the two log proposal densities (up to the same constant), each (n,)."""
    gx = energies.grad_energy(energy, x)
    y = x - step_size * gx + math.sqrt(2.0 * step_size) * noise
    gy = energies.grad_energy(energy, y)
    log_q_forward = -(y - x + step_size * gx).square().sum(1) / (4 * step_size)    # log q(y | x)
    log_q_back = -(x - y + step_size * gy).square().sum(1) / (4 * step_size)       # log q(x | y)
    return y, log_q_forward, log_q_back


def _mala_with(energy, x, step_size, noise, u, hastings: float) -> Tensor:
    y, fwd, back = _mala_parts(energy, x, step_size, noise)
    log_alpha = (energy(x) - energy(y) + hastings * (back - fwd)).clamp(max=0.0)
    return torch.where((torch.log(u) < log_alpha)[:, None], y, x)


def _mala_reference(energy, x, step_size, noise, u):
    return _mala_with(energy, x, step_size, noise, u, 1.0)


def _hint_mala(got, want, inputs):
    if not isinstance(got, Tensor) or got.shape != inputs["x"].shape:
        return "return the next positions, shape (n, d): the proposal where accepted, else x"
    args = [inputs[k] for k in ("energy", "x", "step_size", "noise", "u")]
    if torch.equal(got, _mala_with(*args, hastings=0.0)):
        return ("the proposal correction is missing: the Langevin proposal is not symmetric, so the "
                "ratio needs q(x | x′) / q(x′ | x), with q(b | a) ∝ exp(−‖b − a + η∇E(a)‖² / (4η)); "
                "without it the chain targets the wrong density")
    if torch.equal(got, _mala_with(*args, hastings=-1.0)):
        return "the proposal ratio is upside down: multiply by q(x | x′) / q(x′ | x), the reverse move over the forward one"
    y = _mala_parts(*args[:4])[0]
    if torch.allclose(got, y, atol=1e-8, rtol=1e-6):
        return "every proposal was accepted: that is ULA; compare u with the acceptance probability"
    return None


def check_mala_step(fn: Callable[[Callable, Tensor, float, Tensor, Tensor], Tensor]) -> CheckResult:
    """Check a student's MALA step with its randomness given:

        x′ = x − η∇E(x) + √(2η) ξ;   accept x′ if u < min(1, exp(E(x) − E(x′)) q(x | x′) / q(x′ | x)),
        q(b | a) ∝ exp(−‖b − a + η∇E(a)‖² / (4η))

    ``fn(energy, x, step_size, noise, u)`` takes an energy ((n, d) -> (n,)), positions x (n, d),
    η > 0, the standard normal noise ξ (n, d) and uniforms u (n,), and returns the next
    positions, shape (n, d). The step sizes are large enough that a missing or inverted proposal
    correction changes some decisions; hints name those mistakes. Compared in float64.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    g = torch.Generator().manual_seed(2)
    cases = []
    for (desc, inputs), eta in zip(_sampling_cases(with_u=False), (0.6, 0.08, 0.3)):
        u = torch.rand(inputs["x"].shape[0], generator=g, dtype=torch.float64)
        cases.append((desc, {**inputs, "step_size": eta, "u": u}))
    return compare(fn, _mala_reference, cases, name="mala_step", atol=1e-8, rtol=1e-6, hints=[_hint_mala])
