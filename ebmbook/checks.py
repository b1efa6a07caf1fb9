"""Homework checkers: run a student's function beside the reference and explain the first difference.

The mechanism is :func:`compare`: both functions get the same inputs (fresh copies, so an
in-place change by the student is caught), the outputs are compared element by element, and
the first mismatch is reported with its case, position, both values and, where the mistake
is a common one, a hint. Randomness never enters a comparison by chance: a checker either
passes the noise in as an input, making the step deterministic, or tests a distributional
property with a stated tolerance.

Each chapter's checkers are named ``check_<what the student wrote>``.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from . import energies, grid

__all__ = ["CheckResult", "compare", "check_boltzmann_probs", "check_log_partition_1d"]

Hint = Callable[[Any, Any, dict], "str | None"]  # (got, want, inputs) -> hint or None


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: truthy when passed; displays as its message.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


def _clone(v):
    if isinstance(v, Tensor):
        return v.clone()
    if isinstance(v, (list, tuple)):
        return type(v)(_clone(u) for u in v)
    if isinstance(v, dict):
        return {k: _clone(u) for k, u in v.items()}
    return v


def _same(a, b) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.shape == b.shape and torch.equal(a, b)
    return True


def _describe(inputs: dict) -> str:
    parts = []
    for k, v in inputs.items():
        if isinstance(v, Tensor):
            body = f"{v.tolist()}" if v.numel() <= 6 else f"tensor of shape {tuple(v.shape)}"
            parts.append(f"{k}={body}")
        elif callable(v):
            parts.append(f"{k}={getattr(v, '__name__', 'callable')}")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def compare(student: Callable, reference: Callable, cases: Sequence[tuple[str, dict]], *, name: str,
            atol: float = 1e-5, rtol: float = 1e-4, hints: Sequence[Hint] = ()) -> CheckResult:
    """Run ``student`` and ``reference`` on every case and report the first difference.

    Args:
        student: the function under test.
        reference: the reference implementation, same signature.
        cases: (description, arguments) pairs; the arguments, a dict in the order of the
            function's parameters, are passed by position (students name them as they like).
        name: what the student wrote, for the messages.
        atol, rtol: tolerance of ``torch.allclose`` (non-finite outputs never pass).
        hints: functions (got, want, inputs) -> hint or None, tried in order on a mismatch.

    Returns:
        A :class:`CheckResult`.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    for desc, inputs in cases:
        inputs_before = _clone(inputs)
        try:
            got = student(*inputs.values())
        except Exception as err:  # the student's error is the finding
            return CheckResult(False, f"✗ {name} raised {type(err).__name__}: {err}\n  case: {desc} ({_describe(inputs_before)})")
        for k, v in inputs.items():
            if not _same(v, inputs_before[k]):
                return CheckResult(False, f"✗ {name} changed its input {k!r} in place\n  case: {desc}\n"
                                          "  hint: work on a copy (x.clone()) or use out-of-place operations")
        want = reference(*_clone(inputs_before).values())
        problem = _difference(got, want, atol, rtol)
        if problem:
            msg = f"✗ {name} differs from the reference\n  case: {desc} ({_describe(inputs_before)})\n  {problem}"
            for hint in hints:
                text = hint(got, want, inputs_before)
                if text:
                    msg += f"\n  hint: {text}"
                    break
            return CheckResult(False, msg)
    return CheckResult(True, f"✓ {name} matches the reference on all {len(cases)} cases")


def _difference(got, want, atol: float, rtol: float) -> str | None:
    """None when got matches want, else a one-line description of the first difference."""
    want_t = torch.as_tensor(want)
    if not isinstance(got, Tensor):
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        else:
            return f"expected a tensor, got {type(got).__name__}"
    if got.shape != want_t.shape:
        return f"shape {tuple(got.shape)}, expected {tuple(want_t.shape)}"
    g, w = got.detach().double().cpu(), want_t.detach().double().cpu()
    if not torch.isfinite(g).all():
        i = (~torch.isfinite(g)).nonzero()[0].tolist()
        return f"non-finite value {g[tuple(i)].item()} at index {i} (expected {w[tuple(i)].item():.6g})"
    err = (g - w).abs() - rtol * w.abs()                 # > atol where allclose fails
    if (err > atol).any():
        i = torch.unravel_index(err.argmax(), err.shape) if err.dim() else ()
        i = tuple(int(k) for k in i)
        return f"at index {list(i)}: got {g[i].item():.6g}, expected {w[i].item():.6g} (largest of the differences)"
    return None


# ---------------------------------------------------------------- chapter: Boltzmann distributions

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
        A :class:`CheckResult`.

    See chapter: "Boltzmann distributions and the partition function".
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

    See chapter: "Boltzmann distributions and the partition function".
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


# ---------------------------------------------------------------- chapter: Training by contrastive divergence

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


__all__ += ["check_cd_loss"]


# ---------------------------------------------------------------- chapter: Sampling from an energy

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


__all__ += ["check_mh_accept", "check_langevin_step"]
