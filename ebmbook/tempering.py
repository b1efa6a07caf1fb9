"""Sampling across temperatures: annealed Langevin and parallel tempering, built on the steps of samplers.

A chain at a high temperature T sees the flattened target exp(−E/T) and crosses energy barriers
that trap it at T = 1. Both methods here drive the pure steps of :mod:`ebmbook.samplers`
(``mala_step``, ``hmc_step``, ``langevin_step``), which take a ``temperature``:

* :func:`annealed_langevin` runs the chains through a schedule from hot to cold (or through a
  sequence of energies, one per level, as noise-conditional models do);
* :func:`tempering_step` keeps chains at every temperature of a ladder and swaps neighbours'
  states (replica exchange), so that the chains at T = 1 are exact samples.

See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._contracts import count, positive
from .energies import Energy
from .samplers import ChainResult, ChainState, mala_step, run_chain

__all__ = ["TemperingInfo", "annealed_langevin", "tempering_step"]


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


def _levels(values, name: str, length: int | None = None) -> list[float]:
    """Positive numbers, one per temperature (a single number is repeated)."""
    if isinstance(values, Tensor):
        values = values.detach().flatten().tolist()
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = [values] * (length or 1)
    values = list(values)
    if not values or (length is not None and len(values) != length):
        want = f"one value per temperature ({length})" if length else "at least one value"
        raise ValueError(f"{name} must hold {want}, got {len(values)}")
    return [positive(v, f"{name}[{k}]") for k, v in enumerate(values)]


def annealed_langevin(energy_or_energies: Energy | Sequence[Energy], state: ChainState | Tensor, *,
                      temperatures: Sequence[float], steps_per_level: int, step: Callable,
                      step_size: float | Sequence[float], generator: torch.Generator,
                      progress: bool = False) -> ChainResult:
    """Langevin-type sampling through a schedule of temperatures (or energies), ending at the target.

        for level k = 1 … K:  steps_per_level steps of ``step`` on exp(−E_k / T_k)

    Hot levels let chains cross energy barriers; the cold levels settle them. With
    ``step_size=[eta * t for t in temperatures]`` the drift η∇E is the same at every level and
    the noise grows as √T (the schedule of annealed Langevin in score-based models). With one
    energy per level (noise-conditional energies E_k, usually at T_k = 1) the chains follow the
    sequence of energies; E and ∇E are recomputed at each change of energy.

    Args:
        energy_or_energies: one callable, (n, *event_shape) -> (n,), or a list with one per level.
        state: a :class:`~ebmbook.samplers.ChainState`, or starting positions (n, *event_shape).
        temperatures: the schedule T_1 … T_K, usually decreasing and ending at 1.
        steps_per_level: steps at each level, ≥ 1.
        step: a step of :mod:`ebmbook.samplers` that takes ``step_size`` and ``temperature``:
            ``eb.samplers.mala_step`` (exact at each level), ``eb.samplers.langevin_step`` (ULA),
            or ``functools.partial(eb.samplers.hmc_step, n_leapfrog=5)``.
        step_size: η (ε for HMC), one number for all levels or one per level.
        generator: source of all randomness; must live on the device of x.
        progress: show a tqdm progress bar over the levels.

    Returns:
        A :class:`~ebmbook.samplers.ChainResult` whose trajectory holds the positions at the end
        of each level, shape (K, n, *event_shape), with energies (K, n) (E_k at level k), the
        acceptance rate per chain over all steps (n,) and the final state.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb); noise-conditional energies in
    "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """
    temps = _levels(temperatures, "temperatures")
    etas = _levels(step_size, "step_size", len(temps))
    steps_per_level = count(steps_per_level, "steps_per_level")
    if not callable(step):
        raise TypeError("step must be a step of eb.samplers, e.g. step=eb.samplers.mala_step")
    per_level = isinstance(energy_or_energies, (list, tuple, torch.nn.ModuleList))
    energies = list(energy_or_energies) if per_level else [energy_or_energies] * len(temps)
    if len(energies) != len(temps) or not all(callable(e) for e in energies):
        raise ValueError(f"give one energy, or a list with one energy per entry of temperatures ({len(temps)}), "
                         f"got {len(energies)}")
    ends, end_energies, rates = [], [], []
    levels = list(zip(energies, temps, etas))
    for energy, temp, eta in (tqdm(levels, desc="annealing") if progress else levels):
        if per_level and isinstance(state, ChainState):
            state = ChainState(state.x)                  # the first step computes this level's E and ∇E
        kernel = functools.partial(step, energy, step_size=eta, temperature=temp, generator=generator)
        result = run_chain(kernel, state, n_steps=steps_per_level, keep_trajectory=False)
        state = result.state
        ends.append(state.x)
        end_energies.append(state.energy)
        rates.append(result.accept_rate)
    return ChainResult(torch.stack(ends), torch.stack(end_energies), torch.stack(rates).mean(0), state)


def tempering_step(energy: Energy, state: ChainState, *, temperatures: Sequence[float],
                   step_size: float | Sequence[float], generator: torch.Generator,
                   local_step: Callable = mala_step, **local_kwargs) -> tuple[ChainState, TemperingInfo]:
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
        state: a :class:`~ebmbook.samplers.ChainState` of K·n chains (``run_chain`` also takes
            a tensor start).
        temperatures: the ladder T_0 < T_1 < … < T_{K−1}, T_0 usually 1.
        step_size: the local move's step size, one number or one per temperature.
        generator: source of all randomness; must live on the device of x.
        local_step: a step of :mod:`ebmbook.samplers` (default ``mala_step``); it gets per-chain
            ``step_size`` and ``temperature`` tensors.
        **local_kwargs: passed on to ``local_step`` (e.g. ``n_leapfrog`` for ``hmc_step``).

    Returns:
        (state_next, info): a :class:`~ebmbook.samplers.ChainState` and a :class:`TemperingInfo`.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    temps = _levels(temperatures, "temperatures")
    if any(b <= a for a, b in zip(temps, temps[1:])):
        raise ValueError(f"temperatures must increase along the ladder, got {temps}")
    etas = _levels(step_size, "step_size", len(temps))
    if not isinstance(state, ChainState):
        raise TypeError(f"a step takes a ChainState, got {type(state).__name__}; build one with "
                        "eb.samplers.init_state(energy, x), or let eb.samplers.run_chain take the tensor")
    x0, k_temps = state.x, len(temps)
    if x0.shape[0] % k_temps:
        raise ValueError(f"the state holds {x0.shape[0]} chains, not a multiple of the {k_temps} temperatures; "
                         f"give K·n chains, n per temperature")
    n = x0.shape[0] // k_temps
    like = dict(device=x0.device, dtype=x0.dtype)
    temp_ladder = torch.tensor(temps, **like)                                  # (K,)
    state, local = local_step(energy, state, step_size=torch.tensor(etas, **like).repeat_interleave(n),
                              temperature=temp_ladder.repeat_interleave(n), generator=generator, **local_kwargs)
    if not isinstance(state, ChainState) or state.energy is None:
        raise TypeError("local_step must return a ChainState with energies, e.g. mala_step or hmc_step")

    e = state.energy.view(k_temps, n)                                          # (K, n)
    beta = (1 / temp_ladder)[:, None]                                          # (K, 1)
    log_ratio = (beta[:-1] - beta[1:]) * (e[:-1] - e[1:])                      # (K−1, n)
    swap_prob = log_ratio.nan_to_num(nan=-math.inf, posinf=-math.inf).clamp(max=0).exp()
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
    return state, TemperingInfo(local.accept_prob, local.accepted, swap_prob, swapped)
