"""Drawing samples from exp(−E/T): transition steps, the one loop over time, tempering, diagnostics.

The shape of every sampler here (blackjax's, in PyTorch):

* A **step** is a pure function ``step(energy, state, *, step_size, generator, ...) ->
  (state_next, info)``. It keeps no hidden state, never changes its inputs in place, and takes
  every random number from ``generator``.
* The **state** is a :class:`ChainState`: the positions of n chains with the energy and the input
  gradient there, so that the next step does not recompute them. One step of ULA or MALA costs
  exactly one forward and one input-gradient backward pass, HMC one of each per leapfrog step,
  random-walk MH one forward pass.
* **Tensors in, tensors out.** Give a step a plain tensor of positions and it returns a plain
  tensor (it computes what it needs at the start, which costs one extra gradient for MALA and
  HMC): the form for reading and for checking a hand-written step. Give it a ``ChainState`` and
  it returns a ``ChainState``: the fast form, used by :func:`run_chain`. A state whose energy or
  gradient is ``None`` is completed by the first step that needs it.
* :func:`run_chain` is the only loop over time: burn-in, thinning, trajectory, acceptance rate.
* **Temperature.** ``temperature=T`` makes every step target exp(−E/T): the step is the same
  step applied to the energy E/T with the same step size. The state stores E and ∇E themselves,
  so one state serves every temperature (annealing, tempering).
* **Order of random draws** (fixed, so a hand-written step with the same generator reproduces
  the package's): MH and MALA draw ``randn(x.shape)`` and then ``rand(n)``; ULA and the noisy
  gradient step draw one ``randn(x.shape)``, after the gradient is known; HMC draws the momentum
  ``randn(x.shape)`` and then ``rand(n)``.
* **Non-finite values.** A proposal whose energy, gradient or acceptance ratio is NaN or
  infinite is rejected (acceptance probability 0): outside the energy's domain the target has
  no mass. ULA has no rejection, so a non-finite state raises ``FloatingPointError``.

See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from . import grid as grid_mod
from .device import check_generator
from .energies import Energy, evaluate, value_and_grad

__all__ = [
    "ChainState",
    "StepInfo",
    "TemperingInfo",
    "ChainResult",
    "init_state",
    "mh_step",
    "langevin_step",
    "mala_step",
    "hmc_step",
    "noisy_gradient_step",
    "nominal_temperature",
    "run_chain",
    "annealed_langevin",
    "tempering_step",
    "acceptance_rate",
    "autocorrelation",
    "effective_sample_size",
    "mode_occupancy",
    "grid_kl",
]


class ChainState(NamedTuple):
    """The positions of n chains with what the next step needs there.

    Attributes:
        x: positions, shape (n, *event_shape), detached.
        energy: E(x), shape (n,); ``None`` until a step computes it.
        grad: ∇ₓE(x), shape (n, *event_shape); ``None`` for random-walk MH, or until computed.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """

    x: Tensor
    energy: Tensor | None = None
    grad: Tensor | None = None


class StepInfo(NamedTuple):
    """What one step reports, per chain.

    Attributes:
        accept_prob: Metropolis–Hastings acceptance probability, shape (n,); 1 for ULA.
        accepted: whether the proposal was taken, shape (n,), bool.
        energy_error: HMC only: H(x′, p′) − H(x, p) of the leapfrog trajectory, shape (n,),
            with H = E/T + ½‖p‖²; ``None`` for the other steps.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """

    accept_prob: Tensor
    accepted: Tensor
    energy_error: Tensor | None = None


class TemperingInfo(NamedTuple):
    """What one parallel-tempering step reports (K temperatures, n chains per temperature).

    Attributes:
        accept_prob: acceptance probability of the local move, shape (K·n,).
        accepted: whether the local move was taken, shape (K·n,), bool.
        swap_prob: probability of exchanging the states of temperatures k and k+1, shape
            (K−1, n), computed for every pair (only half of the pairs are proposed per step).
        swapped: whether the exchange happened, shape (K−1, n), bool.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """

    accept_prob: Tensor
    accepted: Tensor
    swap_prob: Tensor
    swapped: Tensor


class ChainResult(NamedTuple):
    """What :func:`run_chain` and :func:`annealed_langevin` return.

    Attributes:
        trajectory: kept positions, shape (T, n, *event_shape); ``None`` when not kept.
        energies: E at the kept positions, shape (T, n); ``None`` when not kept.
        accept_rate: fraction of accepted proposals per chain after burn-in, shape (n,);
            ``accept_rate.mean()`` is the overall rate.
        state: the final :class:`ChainState`, to continue the chains from.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """

    trajectory: Tensor | None
    energies: Tensor | None
    accept_rate: Tensor
    state: ChainState


# ------------------------------------------------------------------------------ checks and helpers

def _check_positions(x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"the chains' positions must be a torch.Tensor or a ChainState, got {type(x).__name__}"
        )
    if x.dim() < 2:
        raise ValueError(
            f"positions must have shape (n, *event_shape) with one row per chain, got {tuple(x.shape)}; "
            "for a single chain use x[None]"
        )
    if not x.is_floating_point():
        raise ValueError(f"positions must be floating point, got {x.dtype}; use x.float()")


def _check_state(state: ChainState) -> None:
    x, e, g = state
    _check_positions(x)
    if e is not None and (not isinstance(e, Tensor) or e.dim() != 1 or e.shape[0] != x.shape[0]):
        got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        raise ValueError(f"state.energy must have shape ({x.shape[0]},), got {got}; build states with init_state")
    if g is not None and (not isinstance(g, Tensor) or g.shape != x.shape):
        got = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
        raise ValueError(f"state.grad must have the shape of state.x, {tuple(x.shape)}, got {got}; "
                         "build states with init_state")


def _positive(value, name: str, x: Tensor, advice: str) -> float | Tensor:
    """A positive number, or a positive (n,) tensor with one value per chain."""
    if type(value) is float and 0 < value < math.inf:             # the common case, first
        return value
    if isinstance(value, Tensor):
        if value.shape != (x.shape[0],):
            raise ValueError(
                f"{name} given as a tensor must hold one value per chain, shape ({x.shape[0]},), "
                f"got {tuple(value.shape)}; or pass a number"
            )
        value = value.to(device=x.device, dtype=x.dtype)
        if not bool((torch.isfinite(value) & (value > 0)).all()):
            raise ValueError(f"every entry of {name} must be positive and finite; {advice}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}; {advice}")
    return float(value)


_STEP_ADVICE = "a small value such as 0.01 is a safe start"
_TEMPERATURE_ADVICE = "temperature=1 is the target exp(−E) itself"


def _per_chain(v: float | Tensor, x: Tensor) -> float | Tensor:
    """Broadcast an (n,) per-chain value against x of shape (n, *event_shape)."""
    return v.view(-1, *([1] * (x.dim() - 1))) if isinstance(v, Tensor) else v


def _sqrt(v: float | Tensor) -> float | Tensor:
    return v.sqrt() if isinstance(v, Tensor) else math.sqrt(v)


def _axpy(y: Tensor, a: float | Tensor, x: Tensor) -> Tensor:
    """y + a·x in one pass (a is a number or broadcasts against x)."""
    return torch.addcmul(y, a, x) if isinstance(a, Tensor) else torch.add(y, x, alpha=a)


def _axpy_(y: Tensor, a: float | Tensor, x: Tensor) -> Tensor:
    """y += a·x in place: only for a tensor the calling step has just created."""
    return y.addcmul_(a, x) if isinstance(a, Tensor) else y.add_(x, alpha=a)


def _sq_norm(t: Tensor) -> Tensor:
    """‖tᵢ‖² over the event dimensions, (n, *event_shape) -> (n,)."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1).square()


def _select(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """a where mask (one bool per chain) else b, for tensors of shape (n, ...)."""
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def _accept_prob(log_alpha: Tensor) -> Tensor:
    """min(1, exp(log α)), and 0 where log α is NaN or +inf (a NaN or infinite proposal).

    Works in place: pass a tensor computed for the purpose.
    """
    return log_alpha.nan_to_num_(nan=-math.inf, posinf=-math.inf).clamp_(max=0).exp_()


def _generator_for(generator, x: Tensor) -> None:
    if not (isinstance(generator, torch.Generator) and generator.device.type == x.device.type):
        check_generator(generator, x.device)                       # raises, naming the fix


def _over(t: Tensor, temp: float | Tensor) -> Tensor:
    """t / T, skipping the division at T = 1."""
    return t if isinstance(temp, float) and temp == 1.0 else t / temp


def _all_finite(t: Tensor) -> bool:
    """One reduction and one sync: a float64 sum of float32 values is finite exactly when they all are."""
    return math.isfinite(t.sum(dtype=torch.float32 if t.device.type == "mps" else torch.float64).item())


class _NonFiniteStart(ValueError):
    pass


def _check_finite_start(e: Tensor, x: Tensor) -> None:
    if not bool(torch.isfinite(e).all()):
        bad = int((~torch.isfinite(e)).nonzero()[0])
        raise _NonFiniteStart(
            f"the energy is {e[bad].item()} at the start of chain {bad} (x = {x[bad].flatten()[:4].tolist()}…); "
            "start the chains where the energy is finite"
        )


def init_state(energy: Energy, x: Tensor, *, with_grad: bool = True) -> ChainState:
    """The state of chains at positions x: E(x) and ∇ₓE(x) from one forward and one backward pass.

        state = (x, E(x), ∇ₓE(x))

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: starting positions, shape (n, *event_shape); not modified.
        with_grad: compute ∇ₓE too (random-walk MH needs only E, one forward pass).

    Returns:
        A :class:`ChainState`, detached.

    Raises:
        ValueError: wrong shapes, or a non-finite energy at a starting point.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    _check_positions(x)
    x = x.detach()
    if with_grad:
        e, g = value_and_grad(energy, x)
    else:
        with torch.no_grad():
            e, g = evaluate(energy, x, allow_nonfinite=True), None
    _check_finite_start(e, x)
    return ChainState(x, e, g)


def _unpack(state) -> tuple[ChainState, bool]:
    """The state, checked (its energy or gradient may still be None), and whether it was a tensor."""
    if isinstance(state, ChainState):
        _check_state(state)
        return state, False
    _check_positions(state)
    return ChainState(state), True


def _complete(energy: Energy, state: ChainState, with_grad: bool) -> ChainState:
    """The state with E (and ∇E) filled in where missing, detached."""
    x, e, g = state
    if e is None or (with_grad and g is None):
        return init_state(energy, x, with_grad=with_grad)
    return ChainState(_detached(x), _detached(e), None if g is None else _detached(g))


def _detached(t: Tensor) -> Tensor:
    return t.detach() if t.requires_grad else t


def _n_leapfrog(n_leapfrog) -> int:
    if isinstance(n_leapfrog, bool) or not isinstance(n_leapfrog, int) or n_leapfrog < 1:
        raise ValueError(f"n_leapfrog must be an int ≥ 1 (leapfrog steps per HMC proposal), got {n_leapfrog!r}")
    return n_leapfrog


# ------------------------------------------------------------------------------------------- steps

def mh_step(energy: Energy, state: ChainState | Tensor, *, step_size: float | Tensor,
            generator: torch.Generator, temperature: float | Tensor = 1.0) -> tuple[ChainState | Tensor, StepInfo]:
    """One random-walk Metropolis–Hastings step: a Gaussian proposal, accepted with the energy ratio.

        x′ = x + σ ξ,  ξ ~ N(0, I);   accept with probability min(1, exp(−(E(x′) − E(x))/T))

    Costs one forward pass (no gradient). Draws ``randn(x.shape)``, then ``rand(n)``.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or positions of shape (n, *event_shape).
        step_size: σ > 0, the proposal's standard deviation (a number or one per chain, (n,)).
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)); the target is exp(−E/T).

    Returns:
        (state_next, info): a :class:`ChainState` with ``grad=None`` (or a tensor (n, *event_shape)
        if a tensor was given) and a :class:`StepInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, as_tensor = _unpack(state)
    x0 = state.x
    sigma = _positive(step_size, "step_size", x0, _STEP_ADVICE)
    temp = _positive(temperature, "temperature", x0, _TEMPERATURE_ADVICE)
    _generator_for(generator, x0)
    x, e, _ = _complete(energy, state, with_grad=False)

    xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_prop = _axpy(x, _per_chain(sigma, x), xi)                       # (n, *event_shape)
    with torch.no_grad():
        e_prop = evaluate(energy, x_prop, allow_nonfinite=True)       # (n,)
    accept_prob = _accept_prob(_over(e - e_prop, temp))
    u = torch.rand(accept_prob.shape, generator=generator, device=x.device, dtype=x.dtype)
    accepted = u < accept_prob
    x_next = _select(accepted, x_prop, x)
    info = StepInfo(accept_prob, accepted)
    if as_tensor:
        return x_next, info
    return ChainState(x_next, torch.where(accepted, e_prop, e), None), info


def _langevin_move(energy, state, step_size, noise_std, clip_grad, generator, temperature):
    """The shared body of ULA and the noisy gradient step: x′ = x − a·clip(∇E) + σ ξ."""
    state, as_tensor = _unpack(state)
    x0 = state.x
    eta = _positive(step_size, "step_size", x0, _STEP_ADVICE)
    temp = _positive(temperature, "temperature", x0, _TEMPERATURE_ADVICE)
    if noise_std is None:
        sigma = _sqrt(2 * eta)
    elif isinstance(noise_std, Tensor):
        raise ValueError("noise_std must be a positive number")
    else:
        sigma = _positive(noise_std, "noise_std", x0, "it is the standard deviation of the added noise")
    if clip_grad is not None:
        if isinstance(clip_grad, Tensor):
            raise ValueError("clip_grad must be a positive number, or None for no clipping")
        clip_grad = _positive(clip_grad, "clip_grad", x0, "or None for no clipping")
    _generator_for(generator, x0)
    try:
        x, _, g = _complete(energy, state, with_grad=True)
    except _NonFiniteStart as err:
        raise FloatingPointError(
            f"{err}; if these positions came from earlier steps, the chains diverged: use a smaller "
            f"step_size than {step_size}"
        ) from None

    if clip_grad is not None:
        g = g.clamp(-clip_grad, clip_grad)
    drift = eta / temp
    xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_next = _axpy_(_axpy(x, -_per_chain(drift, x), g), _per_chain(sigma, x), xi)   # (n, *event_shape)
    ones = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
    info = StepInfo(ones, ones.bool())

    if as_tensor:
        bad = not _all_finite(x_next)
        e_next = g_next = None
    else:
        e_next, g_next = value_and_grad(energy, x_next)
        bad = not _all_finite(e_next)
    if bad:
        size = step_size if not isinstance(step_size, Tensor) else f"up to {float(step_size.max()):.3g}"
        raise FloatingPointError(
            f"the chains diverged: a position or its energy is not finite after a step with "
            f"step_size={size}; use a smaller step_size (step_size times the energy's curvature / T "
            "must stay well below 2), or MALA, which rejects such moves"
        )
    if as_tensor:
        return x_next, info
    return ChainState(x_next, e_next, g_next), info


def langevin_step(energy: Energy, state: ChainState | Tensor, *, step_size: float | Tensor,
                  generator: torch.Generator,
                  temperature: float | Tensor = 1.0) -> tuple[ChainState | Tensor, StepInfo]:
    """One unadjusted Langevin (ULA) step: a gradient step on E/T plus Gaussian noise, never rejected.

        x′ = x − (η/T) ∇E(x) + √(2η) ξ,   ξ ~ N(0, I)

    Its stationary law is exp(−E/T) only as η → 0; on E = x²/2 its variance is 1/(1 − η/2).
    Costs one forward and one input-gradient backward pass (at x′, for the next step). Draws one
    ``randn(x.shape)`` after the gradient at x is known.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or positions of shape (n, *event_shape).
        step_size: η > 0 (a number or one per chain, (n,)).
        generator: source of ξ; must live on the device of x.
        temperature: T > 0 (a number or (n,)).

    Returns:
        (state_next, info): the next :class:`ChainState` (or a tensor (n, *event_shape) if a tensor
        was given) and a :class:`StepInfo` with ``accept_prob = 1``.

    Raises:
        FloatingPointError: the chains diverged (step size too large for the energy's curvature).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return _langevin_move(energy, state, step_size, None, None, generator, temperature)


def mala_step(energy: Energy, state: ChainState | Tensor, *, step_size: float | Tensor,
              generator: torch.Generator, temperature: float | Tensor = 1.0) -> tuple[ChainState | Tensor, StepInfo]:
    """One Metropolis-adjusted Langevin (MALA) step: a ULA proposal, accepted so exp(−E/T) is exact.

        x′ = x − (η/T)∇E(x) + √(2η) ξ;   α = min(1, exp(−(E(x′) − E(x))/T) q(x | x′) / q(x′ | x)),
        q(y | x) ∝ exp(−‖y − x + (η/T)∇E(x)‖² / (4η))

    Costs one forward and one input-gradient backward pass (at x′); E and ∇E at x come from the
    state. Draws ``randn(x.shape)``, then ``rand(n)``.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or positions of shape (n, *event_shape).
        step_size: η > 0 (a number or one per chain, (n,)); tune for an acceptance near 0.57.
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)).

    Returns:
        (state_next, info): the next :class:`ChainState` (or a tensor (n, *event_shape) if a tensor
        was given) and a :class:`StepInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, as_tensor = _unpack(state)
    x0 = state.x
    eta = _positive(step_size, "step_size", x0, _STEP_ADVICE)
    temp = _positive(temperature, "temperature", x0, _TEMPERATURE_ADVICE)
    _generator_for(generator, x0)
    x, e, g = _complete(energy, state, with_grad=True)

    drift = _per_chain(eta / temp, x)                                  # η/T
    xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_prop = _axpy_(_axpy(x, -drift, g), _per_chain(_sqrt(2 * eta), x), xi)   # (n, *event_shape)
    e_prop, g_prop = value_and_grad(energy, x_prop)
    # log q(x | x′) − log q(x′ | x); the forward residual x′ − x + (η/T)∇E(x) is √(2η) ξ
    back = _axpy_(x - x_prop, drift, g_prop)                           # (n, *event_shape)
    log_q_ratio = 0.5 * _sq_norm(xi) - _sq_norm(back) / (4 * eta)      # (n,)
    accept_prob = _accept_prob(_over(e - e_prop, temp) + log_q_ratio)
    u = torch.rand(accept_prob.shape, generator=generator, device=x.device, dtype=x.dtype)
    accepted = u < accept_prob
    x_next = _select(accepted, x_prop, x)
    info = StepInfo(accept_prob, accepted)
    if as_tensor:
        return x_next, info
    return ChainState(x_next, torch.where(accepted, e_prop, e), _select(accepted, g_prop, g)), info


def hmc_step(energy: Energy, state: ChainState | Tensor, *, step_size: float | Tensor, n_leapfrog: int,
             generator: torch.Generator, temperature: float | Tensor = 1.0) -> tuple[ChainState | Tensor, StepInfo]:
    """One Hamiltonian Monte Carlo step: fresh momentum, L leapfrog steps on E/T, one accept/reject.

        p ~ N(0, I);  leapfrog of H(x, p) = E(x)/T + ½‖p‖² with step ε;  α = min(1, exp(−ΔH))

    Costs ``n_leapfrog`` forward and input-gradient backward passes; E and ∇E at the start come
    from the state. With ``n_leapfrog=1`` it is MALA with η = ε²/2. Draws the momentum
    ``randn(x.shape)``, then ``rand(n)``.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or positions of shape (n, *event_shape).
        step_size: ε > 0, the leapfrog step (a number or one per chain, (n,)).
        n_leapfrog: L ≥ 1, leapfrog steps per proposal.
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)).

    Returns:
        (state_next, info): the next :class:`ChainState` (or a tensor (n, *event_shape) if a tensor
        was given) and a :class:`StepInfo` whose ``energy_error`` is ΔH, shape (n,).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, as_tensor = _unpack(state)
    x0 = state.x
    eps = _positive(step_size, "step_size", x0, _STEP_ADVICE)
    temp = _positive(temperature, "temperature", x0, _TEMPERATURE_ADVICE)
    n_leapfrog = _n_leapfrog(n_leapfrog)
    _generator_for(generator, x0)
    x, e, g = _complete(energy, state, with_grad=True)

    kick = _per_chain(eps / temp, x)                                   # ε/T: momentum step per ∇E
    drift = _per_chain(eps, x)
    p0 = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    p = _axpy(p0, -0.5 * kick, g)                                      # half kick
    x_new = x
    for i in range(n_leapfrog):
        x_new = _axpy(x_new, drift, p)
        e_new, g_new = value_and_grad(energy, x_new)
        p = _axpy_(p, -(kick if i < n_leapfrog - 1 else 0.5 * kick), g_new)
    energy_error = _over(e_new - e, temp) + 0.5 * (_sq_norm(p) - _sq_norm(p0))   # ΔH, (n,)
    accept_prob = _accept_prob(-energy_error)
    u = torch.rand(accept_prob.shape, generator=generator, device=x.device, dtype=x.dtype)
    accepted = u < accept_prob
    x_next = _select(accepted, x_new, x)
    info = StepInfo(accept_prob, accepted, energy_error)
    if as_tensor:
        return x_next, info
    return ChainState(x_next, torch.where(accepted, e_new, e), _select(accepted, g_new, g)), info


def noisy_gradient_step(energy: Energy, state: ChainState | Tensor, *, step_size: float, noise_std: float,
                        clip_grad: float | None = None,
                        generator: torch.Generator) -> tuple[ChainState | Tensor, StepInfo]:
    """A heuristic "short-run" step with its own noise: noisy gradient descent, not a sampler of exp(−E).

        x′ = x − η clip(∇E(x)) + σ ξ,   ξ ~ N(0, I),   nominal temperature T = σ²/(2η)

    Without clipping this is ULA on E/T with step σ²/2, T = σ²/(2η) (see
    :func:`nominal_temperature`), so it samples exp(−E/T), with ULA's bias, only while η times
    the energy's curvature is small. Published recipes (η = 10, σ = 0.005) sit at T ≈ 1e-6: the
    chains descend into minima. With clipping active (``clip_grad`` bounds each gradient
    entry) the drift is no longer ∇E and the chain samples no Boltzmann distribution at all.
    With σ = √(2η) and no clipping it is exactly :func:`langevin_step`, same draws included.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or positions of shape (n, *event_shape).
        step_size: η > 0, the gradient step.
        noise_std: σ > 0, the noise's standard deviation, chosen independently of η.
        clip_grad: c > 0 clamps each gradient entry to [−c, c]; None leaves it alone.
        generator: source of ξ; must live on the device of x.

    Returns:
        (state_next, info) as in :func:`langevin_step`.

    Raises:
        FloatingPointError: the chains diverged.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if noise_std is None:
        raise ValueError("noise_std must be a positive number; noise_std = (2 * step_size) ** 0.5 gives ULA")
    return _langevin_move(energy, state, step_size, noise_std, clip_grad, generator, 1.0)


def nominal_temperature(step_size: float, noise_std: float) -> float:
    """The temperature a gradient step with independent noise nominally samples at.

        T = σ² / (2η)

    Valid only while η times the energy's curvature is small and no gradient is clipped.

    Args:
        step_size: η > 0.
        noise_std: σ > 0.

    Returns:
        T as a float; e.g. η = 10, σ = 0.005 gives 1.25e-6.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    for name, v in (("step_size", step_size), ("noise_std", noise_std)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return noise_std**2 / (2 * step_size)


# ---------------------------------------------------------------------------- the loop over time

def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return value


def run_chain(step: Callable, state: ChainState | Tensor, *, n_steps: int, burn_in: int = 0, thin: int = 1,
              keep_trajectory: bool = True, progress: bool = False) -> ChainResult:
    """Run ``burn_in + n_steps`` steps of ``step`` and keep every ``thin``-th state after burn-in.

        x_{t+1} = step(x_t),   kept: x_{b+thin}, x_{b+2·thin}, …   (T = n_steps // thin of them)

    ``step`` is a step with everything but the state bound, e.g.
    ``functools.partial(eb.samplers.mala_step, energy, step_size=0.1, generator=gen)``.

    Args:
        step: callable ChainState -> (ChainState, info), where info has ``accepted`` (n,).
        state: a :class:`ChainState`, or starting positions (n, *event_shape); the first step
            then computes E and ∇E there.
        n_steps: steps after burn-in, ≥ 1.
        burn_in: steps run first and discarded, ≥ 0.
        thin: keep every ``thin``-th state, ≥ 1.
        keep_trajectory: store the kept positions and energies (else only the final state).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`ChainResult`: trajectory (T, n, *event_shape), energies (T, n), the
        acceptance rate per chain (n,) over the ``n_steps`` steps, and the final state.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not callable(step):
        raise TypeError("step must be a callable state -> (state, info), e.g. "
                        "functools.partial(eb.samplers.mala_step, energy, step_size=0.1, generator=gen)")
    if not isinstance(state, ChainState):
        _check_positions(state)
        state = ChainState(state.detach())
    _check_state(state)
    n_steps, burn_in, thin = _count(n_steps, "n_steps", 1), _count(burn_in, "burn_in", 0), _count(thin, "thin", 1)
    n_kept = n_steps // thin
    if keep_trajectory and n_kept == 0:
        raise ValueError(f"thin={thin} > n_steps={n_steps} keeps no state; use thin ≤ n_steps")
    x = state.x
    trajectory = energies = None
    if keep_trajectory:
        trajectory = torch.empty((n_kept, *x.shape), device=x.device, dtype=x.dtype)    # (T, n, *event_shape)
        energies = torch.full((n_kept, x.shape[0]), math.nan, device=x.device, dtype=x.dtype)  # (T, n)
    n_accepted = torch.zeros(x.shape[0], device=x.device, dtype=torch.int64)
    recent: list[Tensor] = []                        # accepted flags, summed in batches of 64 steps

    steps = range(burn_in + n_steps)
    for t in (tqdm(steps, desc="sampling") if progress else steps):
        state, info = step(state)
        if t == 0 and not isinstance(state, ChainState):
            raise TypeError(f"step returned {type(state).__name__}, not a ChainState; run_chain drives "
                            "the state form of a step (see eb.samplers.init_state)")
        if t < burn_in:
            continue
        recent.append(info.accepted)
        if len(recent) == 64:
            n_accepted += torch.stack(recent).sum(0)
            recent.clear()
        k = t - burn_in + 1
        if keep_trajectory and k % thin == 0:
            trajectory[k // thin - 1] = state.x
            if state.energy is not None:
                energies[k // thin - 1] = state.energy
    if recent:
        n_accepted += torch.stack(recent).sum(0)
    accept_rate = n_accepted.to(x.dtype) / n_steps
    return ChainResult(trajectory, energies, accept_rate, state)


# -------------------------------------------------------------------- annealing and tempering

def _schedule(values, name: str, length: int | None, advice: str) -> list[float]:
    if isinstance(values, Tensor):
        values = values.detach().flatten().tolist()
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [float(values)] * (length or 1)
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"{name} must hold at least one value")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must hold one value per temperature ({length}), got {len(values)}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"every entry of {name} must be positive and finite, got {values}; {advice}")
    return values


def annealed_langevin(energy: Energy, state: ChainState | Tensor, *, temperatures: Sequence[float],
                      steps_per_level: int, step_size: float | Sequence[float], generator: torch.Generator,
                      adjusted: bool = False, progress: bool = False) -> ChainResult:
    """Langevin sampling through a schedule of temperatures, hot to cold, ending at the target.

        for each temperature of the schedule, hot to 1:  steps_per_level steps of ULA (or MALA) on exp(−E/temperature)

    Hot levels let chains cross energy barriers; the cold levels settle them. With
    ``step_size=[eta * t for t in temperatures]`` the drift η∇E is the same at every level and
    the noise grows as √T (the schedule of annealed Langevin in score-based models).

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState`, or starting positions (n, *event_shape).
        temperatures: the schedule, usually decreasing and ending at 1.
        steps_per_level: steps at each temperature, ≥ 1.
        step_size: η, one number for all levels or one per level.
        generator: source of all randomness; must live on the device of x.
        adjusted: use MALA steps (exact at each level) instead of ULA.
        progress: show a tqdm progress bar over the levels.

    Returns:
        A :class:`ChainResult` whose trajectory holds the positions at the end of each level,
        shape (T, n, *event_shape) with T = len(temperatures), with energies (T, n), the
        acceptance rate per chain over all steps (n,) and the final state.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    temps = _schedule(temperatures, "temperatures", None, _TEMPERATURE_ADVICE)
    etas = _schedule(step_size, "step_size", len(temps), _STEP_ADVICE)
    steps_per_level = _count(steps_per_level, "steps_per_level", 1)
    kernel = mala_step if adjusted else langevin_step
    x0 = state.x if isinstance(state, ChainState) else state
    _check_positions(x0)
    _generator_for(generator, x0)
    if not isinstance(state, ChainState):
        state = init_state(energy, state)
    ends, end_energies, rates = [], [], []
    levels = zip(temps, etas)
    for temp, eta in (tqdm(list(levels), desc="annealing") if progress else levels):
        step = functools.partial(kernel, energy, step_size=eta, temperature=temp, generator=generator)
        result = run_chain(step, state, n_steps=steps_per_level, keep_trajectory=False)
        state = result.state
        ends.append(state.x)
        end_energies.append(state.energy)
        rates.append(result.accept_rate)
    return ChainResult(torch.stack(ends), torch.stack(end_energies), torch.stack(rates).mean(0), state)


def tempering_step(energy: Energy, state: ChainState | Tensor, *, temperatures: Sequence[float],
                   step_size: float | Sequence[float], generator: torch.Generator,
                   local_step: Callable = mala_step, **local_kwargs) -> tuple[ChainState | Tensor, TemperingInfo]:
    """One parallel-tempering (replica exchange) step: a local move at every temperature, then swaps.

        local moves at every T_k;  swap k ↔ k+1 w.p. min(1, exp((1/T_k − 1/T_{k+1})(E_k − E_{k+1})))

    The state holds K·n chains, laid out as K blocks of n: rows k·n … k·n + n − 1 run at
    temperature ``temperatures[k]``, so ``x.unflatten(0, (K, n))[0]`` are the chains at the first
    (target) temperature, and ``trajectory.unflatten(1, (K, n))[:, 0]`` their kept states. Each
    step proposes exchanges between neighbours k, k+1 for either all even or all odd k (chosen at
    random), for every one of the n columns at once. Exchanges reuse the cached energies: they
    cost no energy evaluation. Draws: the local move's, then ``randint(2)``, then ``rand(K−1, n)``.

    Args:
        energy: callable, (K·n, *event_shape) -> (K·n,).
        state: a :class:`ChainState`, or positions of shape (K·n, *event_shape).
        temperatures: the ladder T_0 < T_1 < … < T_{K−1}, T_0 usually 1.
        step_size: the local move's step size, one number or one per temperature.
        generator: source of all randomness; must live on the device of x.
        local_step: a step of this module (default :func:`mala_step`); it gets per-chain
            ``step_size`` and ``temperature`` tensors.
        **local_kwargs: passed on to ``local_step`` (e.g. ``n_leapfrog`` for :func:`hmc_step`).

    Returns:
        (state_next, info): a :class:`ChainState` (or a tensor, if a tensor was given) and a
        :class:`TemperingInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    temps = _schedule(temperatures, "temperatures", None, _TEMPERATURE_ADVICE)
    if any(b <= a for a, b in zip(temps, temps[1:])):
        raise ValueError(f"temperatures must increase along the ladder, got {temps}")
    etas = _schedule(step_size, "step_size", len(temps), _STEP_ADVICE)
    x0 = state.x if isinstance(state, ChainState) else state
    _check_positions(x0)
    k_temps = len(temps)
    if x0.shape[0] % k_temps:
        raise ValueError(
            f"the state holds {x0.shape[0]} chains, not a multiple of the {k_temps} temperatures; "
            f"give K·n chains, n per temperature"
        )
    n = x0.shape[0] // k_temps
    _generator_for(generator, x0)
    as_tensor = not isinstance(state, ChainState)
    if as_tensor:
        state = init_state(energy, state)

    like = dict(device=x0.device, dtype=x0.dtype)
    temp_ladder = torch.tensor(temps, **like)                                  # (K,)
    chain_temps = temp_ladder.repeat_interleave(n)                             # (K·n,)
    chain_etas = torch.tensor(etas, **like).repeat_interleave(n)               # (K·n,)
    state, local = local_step(energy, state, step_size=chain_etas, temperature=chain_temps,
                              generator=generator, **local_kwargs)
    if not isinstance(state, ChainState) or state.energy is None:
        raise TypeError("local_step must return a ChainState with energies, e.g. mala_step or hmc_step")

    e = state.energy.view(k_temps, n)                                          # (K, n)
    beta = (1 / temp_ladder)[:, None]                                          # (K, 1)
    swap_prob = _accept_prob((beta[:-1] - beta[1:]) * (e[:-1] - e[1:]))       # (K−1, n)
    parity = torch.randint(2, (), generator=generator, device=x0.device)
    u = torch.rand(swap_prob.shape, generator=generator, **like)
    proposed = (torch.arange(k_temps - 1, device=x0.device) % 2 == parity)[:, None]   # (K−1, 1)
    swapped = proposed & (u < swap_prob)                                       # (K−1, n)
    # source block of each row: k+1 if pair (k, k+1) swapped, k−1 if pair (k−1, k) did, else k
    source = torch.arange(k_temps, device=x0.device)[:, None].expand(k_temps, n).clone()   # (K, n)
    source[:-1] += swapped.long()
    source[1:] -= swapped.long()
    rows = (source * n + torch.arange(n, device=x0.device)).flatten()         # (K·n,)
    x, en, g = state
    state = ChainState(x[rows], en[rows], None if g is None else g[rows])
    info = TemperingInfo(local.accept_prob, local.accepted, swap_prob, swapped)
    return (state.x if as_tensor else state), info


# ------------------------------------------------------------------------------------- diagnostics

def acceptance_rate(accepted: Tensor | Sequence[Tensor]) -> Tensor:
    """Fraction of accepted proposals per chain.

        rate_i = (1/T) Σ_t accepted_{t,i}

    Args:
        accepted: bool flags of shape (T, n), or a list of T tensors of shape (n,) (``info.accepted``).

    Returns:
        Rates, shape (n,), as float; ``.mean()`` is the overall rate.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not isinstance(accepted, Tensor):
        accepted = torch.stack(list(accepted))
    if accepted.dim() != 2:
        raise ValueError(f"accepted must have shape (T, n), got {tuple(accepted.shape)}")
    return accepted.float().mean(0)


def _autocovariance(x: Tensor) -> Tensor:
    """Biased autocovariance along dim 0 (divided by T) by FFT, same shape as x."""
    n_t = x.shape[0]
    centred = x - x.mean(0)
    size = 2 ** math.ceil(math.log2(2 * n_t - 1))                # zero padding: no circular wrap
    f = torch.fft.rfft(centred, n=size, dim=0)
    return torch.fft.irfft(f.real.square() + f.imag.square(), n=size, dim=0)[:n_t] / n_t


def autocorrelation(trace: Tensor, max_lag: int | None = None) -> Tensor:
    """Autocorrelation of each series along time, by FFT.

        ρ̂_τ = Σ_{t<T−τ} (x_t − x̄)(x_{t+τ} − x̄) / Σ_t (x_t − x̄)²

    Args:
        trace: shape (T, ...), e.g. (T, n) energies or (T, n, d) positions.
        max_lag: largest lag τ returned (default T − 1).

    Returns:
        ρ̂ for τ = 0 … max_lag, shape (max_lag + 1, ...); ρ̂_0 = 1 (NaN for a constant series).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not isinstance(trace, Tensor) or trace.dim() < 1 or trace.shape[0] < 2:
        raise ValueError("trace must be a tensor of shape (T, ...) with T ≥ 2")
    max_lag = trace.shape[0] - 1 if max_lag is None else _count(max_lag, "max_lag", 0)
    if max_lag >= trace.shape[0]:
        raise ValueError(f"max_lag must be < T = {trace.shape[0]}, got {max_lag}")
    acov = _autocovariance(trace.detach().to(torch.float64))
    return (acov[: max_lag + 1] / acov[0]).to(trace.dtype if trace.is_floating_point() else torch.float64)


def effective_sample_size(trace: Tensor, *, split: bool = True) -> Tensor:
    """Effective sample size of all chains together (the multi-chain estimator of Stan and ArviZ).

        ESS = m·N / τ,   τ = −1 + 2 Σ_k P̃_k,   P_k = ρ̂_{2k} + ρ̂_{2k+1}

    ρ̂_t combines the chains' autocovariances with the between-chain variance, so chains stuck in
    different modes give a small ESS; the sum stops at the first negative P_k and P̃ is P made
    monotone (Geyer's initial monotone sequence). Vectorized over chains and dimensions.

    Args:
        trace: shape (T, n, ...): T kept steps of n chains; each trailing entry (a coordinate,
            or the energy with trace (T, n)) gets its own ESS.
        split: split every chain into halves first (m = 2n, N = T // 2), which also
            catches chains that drift.

    Returns:
        ESS, shape trace.shape[2:], in float64; at most m·N·log₁₀(m·N).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not isinstance(trace, Tensor) or trace.dim() < 2:
        raise ValueError("trace must have shape (T, n, ...) with one column per chain; "
                         "for one chain use trace[:, None]")
    x = trace.detach().to(torch.float64)
    rest = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1)                              # (T, n, D)
    if split:
        half = x.shape[0] // 2
        x = torch.cat([x[:half], x[x.shape[0] - half:]], dim=1)            # (T/2, 2n, D)
    n_t, m = x.shape[0], x.shape[1]
    if n_t < 4:
        raise ValueError(f"need at least 4 steps per chain{' after splitting' if split else ''}, got {n_t}")
    acov = _autocovariance(x)                                              # (N, m, D)
    within = acov[0].mean(0) * n_t / (n_t - 1)                             # (D,) W
    var_plus = within * (n_t - 1) / n_t
    if m > 1:
        var_plus = var_plus + x.mean(0).var(0)                             # + B/N
    rho = 1 - (within - acov.mean(1)) / var_plus                           # (N, D)
    rho[0] = 1
    pairs = rho[: 2 * (n_t // 2)].reshape(n_t // 2, 2, -1).sum(1)          # (N/2, D) P_k
    positive = torch.cumprod((pairs > 0).to(torch.float64), dim=0)         # 1 until the first P_k ≤ 0
    monotone = torch.cummin(pairs, dim=0).values
    tau = -1 + 2 * (monotone * positive).sum(0)
    total = m * n_t
    tau = torch.clamp(tau, min=1 / math.log10(total))
    return (total / tau).reshape(rest)


def mode_occupancy(samples: Tensor, means: Tensor) -> Tensor:
    """Fraction of samples nearest to each mode.

        occupancy_k = #{i : argmin_j ‖xᵢ − μ_j‖ = k} / n

    Args:
        samples: shape (n, d), or a trajectory (T, n, d) (all kept states count).
        means: the modes μ_k, shape (K, d).

    Returns:
        Fractions, shape (K,), summing to 1; compare with the exact mode masses (1/K for equal ones).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    means = torch.as_tensor(means, device=samples.device, dtype=samples.dtype)
    if means.dim() != 2 or samples.shape[-1] != means.shape[1] or samples.dim() not in (2, 3):
        raise ValueError(f"samples (n, d) or (T, n, d) and means (K, d) must share d; got "
                         f"{tuple(samples.shape)} and {tuple(means.shape)}")
    flat = samples.reshape(-1, means.shape[1])                             # (T·n, d)
    nearest = torch.cdist(flat, means).argmin(1)                           # (T·n,)
    return torch.bincount(nearest, minlength=means.shape[0]).to(torch.float64) / flat.shape[0]


def grid_kl(samples: Tensor, energy: Energy, grid: grid_mod.Grid, *, temperature: float = 1.0,
            refine: int = 4) -> Tensor:
    """Exact KL between the histogram of samples and the target's cell masses on a 2-D (or 1-D) grid.

        KL(q̂ ‖ P) = Σᵢ q̂ᵢ log(q̂ᵢ / Pᵢ),   Pᵢ = ∫_cellᵢ exp(−E/T) / Z

    A thin wrapper of :func:`ebmbook.grid.kl_from_samples` that also takes trajectories; quote
    :func:`ebmbook.grid.kl_floor` for the same number of samples beside it.

    Args:
        samples: shape (n, d) or a trajectory (T, n, d), d = grid.dim.
        energy: the target energy.
        grid: the histogram's bins, from :func:`ebmbook.grid.make_grid`.
        temperature: T > 0 of the target.
        refine: sub-cells per cell and dimension for the exact masses.

    Returns:
        A 0-dim float64 tensor in nats (+inf if a sample lies outside the box).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if isinstance(samples, Tensor) and samples.dim() == 3:
        samples = samples.reshape(-1, samples.shape[-1])                   # (T·n, d)
    return grid_mod.kl_from_samples(samples, energy, grid, temperature=temperature, refine=refine)
