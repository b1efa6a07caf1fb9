"""Drawing samples from exp(−E/T): the chain state, pure transition steps, and the one loop over time.

* The **state** is a :class:`ChainState`: positions of n chains with E and ∇ₓE there, so the next
  step does not recompute them; :func:`init_state` builds it and checks the positions once.
  ULA and MALA cost one forward and one input-gradient backward pass per step, HMC one of each
  per leapfrog step, random-walk MH one forward.
* A **step** is a pure function ``step(energy, state, *, ..., generator) -> (state_next, info)``
  on states only, as in blackjax: it keeps no hidden state, never changes its inputs in place,
  and takes every random number from ``generator``. A state whose energy or gradient is
  ``None`` (e.g. ``ChainState(x)``) is completed by the first step that needs it (:func:`init_state`).
* **One Metropolis block.** MH, MALA and HMC propose, then share one accept/reject: a proposal
  whose energy, gradient or log-ratio is NaN or infinite is rejected (acceptance probability 0),
  because outside the energy's domain the target has no mass. ULA has no rejection, so a
  non-finite position or energy raises ``FloatingPointError``.
* :func:`run_chain` is the only loop over time; it also accepts a tensor of starting positions.
* **Step sizes, one meaning per name.** ``step_size`` is η for ULA and MALA (drift η/T · ∇E,
  noise √(2η) ξ) and the leapfrog ε for HMC; HMC with one leapfrog step is MALA with η = ε²/2.
  Random-walk MH has a ``proposal_std`` σ instead. Step sizes and temperatures are numbers or
  per-chain tensors (n,); each step checks them (a positive float in well under a microsecond).
* **Temperature.** ``temperature=T`` makes a step target exp(−E/T): it is the same step on the
  energy E/T. The state stores E and ∇E themselves, so one state serves every temperature.
* **Order of random draws** (fixed, so a hand-written step with the same generator reproduces
  the package's): MH and MALA draw ``randn(x.shape)``, then ``rand(n)``; ULA one ``randn(x.shape)``
  after the gradient at x is known; HMC the momentum ``randn(x.shape)``, then ``rand(n)``.

See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._contracts import count, per_chain, points, positive
from .device import check_generator
from .energies import Energy, evaluate, value_and_grad

__all__ = [
    "ChainState",
    "StepInfo",
    "ChainResult",
    "init_state",
    "mh_step",
    "langevin_step",
    "mala_step",
    "hmc_step",
    "noisy_gradient_step",
    "nominal_temperature",
    "differentiable_langevin_step",
    "run_chain",
]


class ChainState(NamedTuple):
    """The positions of n chains with what the next step needs there.

    Attributes:
        x: positions, shape (n, *event_shape), detached.
        energy: E(x), shape (n,); ``None`` until a step computes it.
        grad: ∇ₓE(x), shape (n, *event_shape); ``None`` for random-walk MH, or until computed.

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
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


class ChainResult(NamedTuple):
    """What :func:`run_chain` and :func:`ebmbook.tempering.annealed_langevin` return.

    Attributes:
        trajectory: kept positions, shape (T, n, *event_shape); ``None`` when not kept.
        energies: E at the kept positions, shape (T, n) (NaN where a step left E unknown);
            ``None`` when not kept.
        accept_rate: fraction of accepted proposals per chain after burn-in, shape (n,);
            ``accept_rate.mean()`` is the overall rate.
        state: the final :class:`ChainState`, to continue the chains from.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """

    trajectory: Tensor | None
    energies: Tensor | None
    accept_rate: Tensor
    state: ChainState


_ADVICE = {"step_size": "a small value such as 0.01 is a safe start",
           "proposal_std": "a value near the target's width is a good start",
           "temperature": "temperature=1 is the target exp(−E) itself"}


def init_state(energy: Energy, x: Tensor, *, with_grad: bool = True) -> ChainState:
    """The state of chains at positions x: E(x) and ∇ₓE(x) from one forward and one backward pass.

        state = (x, E(x), ∇ₓE(x))

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: starting positions, shape (n, *event_shape), floating point; not modified.
        with_grad: compute ∇ₓE too (random-walk MH needs only E, one forward pass).

    Returns:
        A :class:`ChainState`, detached.

    Raises:
        TypeError: x is not a floating-point tensor.
        ValueError: wrong shapes, an empty batch, or a non-finite energy at a starting point.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    x = points(x, "x").detach()
    if with_grad:
        e, g = value_and_grad(energy, x)
    else:
        with torch.no_grad():
            e, g = evaluate(energy, x, allow_nonfinite=True), None
    if not bool(torch.isfinite(e).all()):
        bad = int((~torch.isfinite(e)).nonzero()[0])
        raise ValueError(f"the energy is {e[bad].item()} at the start of chain {bad} "
                         f"(x = {x[bad].flatten()[:4].tolist()}…); start the chains where the energy is finite")
    return ChainState(x, e, g)


def _begin(energy: Energy, state: ChainState, generator, with_grad: bool, **scales) -> tuple:
    """The state, completed where E (or ∇E) is missing, and the step's numbers, checked."""
    if not isinstance(state, ChainState):
        raise TypeError(f"a step takes a ChainState, got {type(state).__name__}; build one with "
                        "eb.samplers.init_state(energy, x), or let eb.samplers.run_chain take the tensor")
    x = state.x
    if not (type(generator) is torch.Generator and generator.device.type == x.device.type):
        check_generator(generator, x.device)                              # raises, naming the fix
    # every step: a positive float passes at once, anything else goes through per_chain
    values = [v if type(v) is float and 0.0 < v < math.inf else per_chain(v, name, x, _ADVICE[name])
              for name, v in scales.items()]
    if state.energy is None or (with_grad and state.grad is None):
        state = init_state(energy, state.x, with_grad=with_grad)
    return (state, *values)


def _per_chain(v: float | Tensor, x: Tensor) -> float | Tensor:
    """Broadcast an (n,) per-chain value against x of shape (n, *event_shape)."""
    return v.view(-1, *([1] * (x.dim() - 1))) if isinstance(v, Tensor) else v


def _axpy(y: Tensor, a: float | Tensor, x: Tensor) -> Tensor:
    """y + a·x (a is a number or broadcasts against x)."""
    return torch.addcmul(y, a, x) if isinstance(a, Tensor) else torch.add(y, x, alpha=a)


def _sq_norm(t: Tensor) -> Tensor:
    """‖tᵢ‖² over the event dimensions, (n, *event_shape) -> (n,)."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1).square()


def _randn(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _over(t: Tensor, temp: float | Tensor) -> Tensor:
    """t / T, skipping the division at T = 1 (the same numbers, one operation less per step)."""
    return t if isinstance(temp, float) and temp == 1.0 else t / temp


def _metropolis(log_ratio: Tensor, proposal: ChainState, state: ChainState, generator: torch.Generator,
                energy_error: Tensor | None = None) -> tuple[ChainState, StepInfo]:
    """The one accept/reject block: take the proposal w.p. min(1, exp(log_ratio)), NaN or +inf → reject.

    Draws ``rand(n)``, after the proposal's draws.
    """
    (x, e, g), (x_new, e_new, g_new) = state, proposal
    accept_prob = log_ratio.nan_to_num(nan=-math.inf, posinf=-math.inf).clamp(max=0).exp()   # (n,)
    accepted = torch.rand(accept_prob.shape, generator=generator, device=x.device, dtype=x.dtype) < accept_prob
    mask = accepted.view(-1, *([1] * (x.dim() - 1)))                                         # (n, 1, …)
    kept = ChainState(torch.where(mask, x_new, x), torch.where(accepted, e_new, e),
                      None if g_new is None else torch.where(mask, g_new, g))
    return kept, StepInfo(accept_prob, accepted, energy_error)


def mh_step(energy: Energy, state: ChainState, *, proposal_std: float | Tensor, generator: torch.Generator,
            temperature: float | Tensor = 1.0) -> tuple[ChainState, StepInfo]:
    """One random-walk Metropolis–Hastings step: a Gaussian proposal, accepted with the energy ratio.

        x′ = x + σ ξ,  ξ ~ N(0, I);   accept with probability min(1, exp(−(E(x′) − E(x))/T))

    Costs one forward pass (no gradient). Draws ``randn(x.shape)``, then ``rand(n)``. The
    proposal's scale is σ (``proposal_std``), not a Langevin step size: MALA with step η
    proposes with standard deviation √(2η).

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState` (see :func:`init_state`); its ``grad`` is not needed.
        proposal_std: σ > 0, the proposal's standard deviation (a number or one per chain, (n,)).
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)); the target is exp(−E/T).

    Returns:
        (state_next, info): a :class:`ChainState` with ``grad=None`` and a :class:`StepInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, sigma, temp = _begin(energy, state, generator, False, proposal_std=proposal_std, temperature=temperature)
    x, e, _ = state
    x_prop = _axpy(x, _per_chain(sigma, x), _randn(x, generator))       # (n, *event_shape)
    with torch.no_grad():
        e_prop = energy(x_prop)                                           # (n,), its shape checked by init_state
    return _metropolis(_over(e - e_prop, temp), ChainState(x_prop, e_prop), state, generator)


def langevin_step(energy: Energy, state: ChainState, *, step_size: float | Tensor, generator: torch.Generator,
                  temperature: float | Tensor = 1.0, project: Callable | None = None) -> tuple[ChainState, StepInfo]:
    """One unadjusted Langevin (ULA) step: a gradient step on E/T plus Gaussian noise, never rejected.

        x′ = x − (η/T) ∇E(x) + √(2η) ξ,   ξ ~ N(0, I)

    Its stationary law is exp(−E/T) only as η → 0; on E = x²/2 its variance is 1/(1 − η/2).
    Costs one forward and one input-gradient backward pass (at x′, for the next step). Draws one
    ``randn(x.shape)`` after the gradient at x is known. η is the same step size as MALA's; HMC
    with one leapfrog step of ε is MALA with η = ε²/2.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState` (see :func:`init_state`).
        step_size: η > 0 (a number or one per chain, (n,)).
        generator: source of ξ; must live on the device of x.
        temperature: T > 0 (a number or (n,)).
        project: a map applied to x′ before E and ∇E are evaluated there (projected Langevin),
            e.g. ``lambda x: x.clamp(-1, 1)`` to keep pixels in their range.

    Returns:
        (state_next, info): the next :class:`ChainState` and a :class:`StepInfo` with
        ``accept_prob = 1``.

    Raises:
        FloatingPointError: the chains diverged (step size too large for the energy's curvature).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, eta, temp = _begin(energy, state, generator, True, step_size=step_size, temperature=temperature)
    x, _, g = state
    xi = _randn(x, generator)
    x_next = _axpy(_axpy(x, -_per_chain(eta / temp, x), g), _per_chain((2 * eta) ** 0.5, x), xi)   # (n, *event_shape)
    x_next = x_next if project is None else project(x_next)
    e_next, g_next = value_and_grad(energy, x_next)
    if not math.isfinite(e_next.sum(dtype=torch.float32 if x.device.type == "mps" else torch.float64)):
        size = step_size if not isinstance(step_size, Tensor) else f"up to {float(step_size.max()):.3g}"
        raise FloatingPointError(f"the chains diverged: an energy is not finite after a step with step_size={size}; "
                                 f"use a smaller step_size than {size} (step_size times the energy's curvature / T "
                                 "must stay well below 2), or MALA, which rejects such moves")
    ones = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
    return ChainState(x_next, e_next, g_next), StepInfo(ones, ones.bool())


def mala_step(energy: Energy, state: ChainState, *, step_size: float | Tensor, generator: torch.Generator,
              temperature: float | Tensor = 1.0) -> tuple[ChainState, StepInfo]:
    """One Metropolis-adjusted Langevin (MALA) step: a ULA proposal, accepted so exp(−E/T) is exact.

        x′ = x − (η/T)∇E(x) + √(2η) ξ;   α = min(1, exp(−(E(x′) − E(x))/T) q(x | x′) / q(x′ | x)),
        q(y | x) ∝ exp(−‖y − x + (η/T)∇E(x)‖² / (4η))

    Costs one forward and one input-gradient backward pass (at x′); E and ∇E at x come from the
    state. Draws ``randn(x.shape)``, then ``rand(n)``. HMC with one leapfrog step of ε is this
    step with η = ε²/2.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState` (see :func:`init_state`).
        step_size: η > 0 (a number or one per chain, (n,)); tune for an acceptance near 0.57.
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)).

    Returns:
        (state_next, info): the next :class:`ChainState` and a :class:`StepInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, eta, temp = _begin(energy, state, generator, True, step_size=step_size, temperature=temperature)
    x, e, g = state
    drift = _per_chain(eta / temp, x)                                     # η/T
    xi = _randn(x, generator)
    x_prop = _axpy(_axpy(x, -drift, g), _per_chain((2 * eta) ** 0.5, x), xi)   # (n, *event_shape)
    e_prop, g_prop = value_and_grad(energy, x_prop)
    # log q(x | x′) − log q(x′ | x); the forward residual x′ − x + (η/T)∇E(x) is √(2η) ξ
    back = _axpy(x - x_prop, drift, g_prop)                               # (n, *event_shape)
    log_ratio = _over(e - e_prop, temp) + (0.5 * _sq_norm(xi) - _sq_norm(back) / (4 * eta))
    return _metropolis(log_ratio, ChainState(x_prop, e_prop, g_prop), state, generator)


def hmc_step(energy: Energy, state: ChainState, *, step_size: float | Tensor, n_leapfrog: int,
             generator: torch.Generator, temperature: float | Tensor = 1.0) -> tuple[ChainState, StepInfo]:
    """One Hamiltonian Monte Carlo step: fresh momentum, L leapfrog steps on E/T, one accept/reject.

        p ~ N(0, I);  leapfrog of H(x, p) = E(x)/T + ½‖p‖² with step ε;  α = min(1, exp(−ΔH))

    Costs ``n_leapfrog`` forward and input-gradient backward passes; E and ∇E at the start come
    from the state. ``step_size`` here is the leapfrog ε, not a Langevin η: with
    ``n_leapfrog=1`` this is MALA with η = ε²/2. Draws the momentum ``randn(x.shape)``, then
    ``rand(n)``.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState` (see :func:`init_state`).
        step_size: ε > 0, the leapfrog step (a number or one per chain, (n,)).
        n_leapfrog: L ≥ 1, leapfrog steps per proposal.
        generator: source of all randomness; must live on the device of x.
        temperature: T > 0 (a number or (n,)).

    Returns:
        (state_next, info): the next :class:`ChainState` and a :class:`StepInfo` whose
        ``energy_error`` is ΔH, shape (n,).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    state, eps, temp = _begin(energy, state, generator, True, step_size=step_size, temperature=temperature)
    n_leapfrog = count(n_leapfrog, "n_leapfrog (leapfrog steps per HMC proposal)")
    x, e, g = state
    kick = _per_chain(eps / temp, x)                                      # ε/T: momentum step per ∇E
    p0 = _randn(x, generator)
    p = _axpy(p0, -0.5 * kick, g)                                         # half kick
    x_new = x
    for i in range(n_leapfrog):
        x_new = _axpy(x_new, _per_chain(eps, x), p)
        e_new, g_new = value_and_grad(energy, x_new)
        p = _axpy(p, -(kick if i < n_leapfrog - 1 else 0.5 * kick), g_new)
    energy_error = _over(e_new - e, temp) + 0.5 * (_sq_norm(p) - _sq_norm(p0))   # ΔH, (n,)
    return _metropolis(-energy_error, ChainState(x_new, e_new, g_new), state, generator, energy_error)


def nominal_temperature(step_size: float, noise_std: float) -> float:
    """The temperature a gradient step with independent noise nominally samples at.

        T = σ² / (2η)

    Valid only while η times the energy's curvature is small.

    Args:
        step_size: η > 0.
        noise_std: σ > 0.

    Returns:
        T as a float; e.g. η = 10, σ = 0.005 gives 1.25e-6.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    return positive(noise_std, "noise_std") ** 2 / (2 * positive(step_size, "step_size", _ADVICE["step_size"]))


def noisy_gradient_step(energy: Energy, state: ChainState, *, step_size: float, noise_std: float,
                        generator: torch.Generator, project: Callable | None = None) -> tuple[ChainState, StepInfo]:
    """A gradient step with its own noise level: ULA with step σ²/2 at the nominal temperature σ²/(2η).

        x′ = x − η ∇E(x) + σ ξ,   ξ ~ N(0, I),   T = σ²/(2η)

    The step of "short-run" recipes, where σ is chosen apart from η. It is exactly
    :func:`langevin_step` with step σ²/2 at temperature T = σ²/(2η) (see
    :func:`nominal_temperature`), same draws included, so it samples exp(−E/T), with ULA's bias,
    only while η times the energy's curvature is small. Published recipes (η = 10, σ = 0.005)
    sit at T ≈ 1e-6: the chains descend into minima rather than sample exp(−E).

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        state: a :class:`ChainState` (see :func:`init_state`).
        step_size: η > 0, the gradient step.
        noise_std: σ > 0, the noise's standard deviation, chosen independently of η.
        generator: source of ξ; must live on the device of x.
        project: a map applied to x′ before E and ∇E there, as in :func:`langevin_step`.

    Returns:
        (state_next, info) as in :func:`langevin_step`.

    Raises:
        FloatingPointError: the chains diverged.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    temperature = nominal_temperature(step_size, noise_std)
    try:
        return langevin_step(energy, state, step_size=noise_std**2 / 2, generator=generator, temperature=temperature,
                             project=project)
    except FloatingPointError:
        raise FloatingPointError(f"the chains diverged: an energy is not finite after a step with step_size="
                                 f"{step_size} and noise_std={noise_std}; use a smaller step_size than "
                                 f"{step_size}") from None


def differentiable_langevin_step(energy: Energy, x: Tensor, *, step_size: float,
                                 generator: torch.Generator) -> Tensor:
    """One ULA step that keeps its graph, so x′ depends on θ through ∇ₓE_θ.

        x′ = x − η ∇ₓE_θ(x) + √(2η) ξ,   ξ ~ N(0, I)

    ``x`` itself is treated as a constant (earlier steps are not differentiated). Draws one
    ``randn(x.shape)`` after the gradient, as :func:`langevin_step` does, so with the same
    generator both give the same x′. The KL term of :mod:`ebmbook.losses` differentiates it.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: positions before the step, shape (n, *event_shape).
        step_size: η > 0.
        generator: source of ξ, on the device of x.

    Returns:
        x′, shape (n, *event_shape), with a graph back to the energy's parameters.

    See chapter: "Stabilizers and improved contrastive divergence" (chapters/improved_cd.ipynb).
    """
    x = points(x, "x").detach()
    step_size = positive(step_size, "step_size", _ADVICE["step_size"])
    check_generator(generator, x.device)
    _, g = value_and_grad(energy, x, create_graph=True)                  # (n, *event_shape), depends on θ
    return x - step_size * g + math.sqrt(2 * step_size) * _randn(x, generator)


def run_chain(step: Callable, state: ChainState | Tensor, *, n_steps: int, burn_in: int = 0, thin: int = 1,
              keep_trajectory: bool = True, progress: bool = False) -> ChainResult:
    """Run ``burn_in + n_steps`` steps of ``step`` and keep every ``thin``-th state after burn-in.

        x_{t+1} = step(x_t),   kept: x_{b+thin}, x_{b+2·thin}, …   (T = n_steps // thin of them)

    ``step`` is a step with everything but the state bound, e.g.
    ``functools.partial(eb.samplers.mala_step, energy, step_size=0.1, generator=gen)``.

    Args:
        step: callable ChainState -> (ChainState, info), where info has ``accepted`` (n,).
        state: a :class:`ChainState`, or starting positions (n, *event_shape), which are checked
            and wrapped as ``ChainState(x)``: the first step then computes E (and ∇E) there.
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
    state = state if isinstance(state, ChainState) else ChainState(points(state, "the starting positions").detach())
    x = points(state.x, "state.x")
    for name, t, shape in (("energy", state.energy, x.shape[:1]), ("grad", state.grad, x.shape)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != shape):
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"state.{name} must have shape {tuple(shape)}, got {got}; build states with init_state")
    n_steps, burn_in, thin = count(n_steps, "n_steps"), count(burn_in, "burn_in", 0), count(thin, "thin")
    n_kept = n_steps // thin
    if keep_trajectory and n_kept == 0:
        raise ValueError(f"thin={thin} > n_steps={n_steps} keeps no state; use thin ≤ n_steps")
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
            raise TypeError(f"step returned {type(state).__name__}, not a ChainState; a step maps a "
                            "ChainState to (ChainState, info), see eb.samplers.init_state")
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
    return ChainResult(trajectory, energies, n_accepted.to(x.dtype) / n_steps, state)
