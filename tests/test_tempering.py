"""Tempering and annealing: mode balance where a single chain stays stuck, swaps that keep the
ladder, annealing through one energy per level, the order of draws, and contracts.

Tolerances are stated as multiples of the Monte Carlo standard error under exact sampling.
"""

import functools
import math

import pytest
import torch

import ebmbook as eb
import ebmbook.diagnostics  # noqa: F401  (eb.diagnostics and eb.tempering before the package imports them)
import ebmbook.tempering  # noqa: F401

S, TEMPERING = eb.samplers, eb.tempering

MODES = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])


def four_modes(x):
    """Four equal Gaussians (std 0.4) at the corners of a square: barriers of about 28 nats."""
    return eb.energies.gaussian_mixture(x, MODES, 0.4)


def half_square(x):
    """E = ½‖x‖², the standard normal."""
    return 0.5 * x.flatten(1).square().sum(1)


def spread(x):
    """Mean squared distance to the nearest mode."""
    return float(torch.cdist(x, MODES).min(1).values.square().mean())


def test_tempering_and_annealing_balance_modes_where_mala_stays_stuck():
    # All chains start in one mode. Exact occupancy is 1/4 per mode; with 1,000 chains its standard
    # error is √(¼·¾/1000) = 0.014, tolerance 0.06.
    gen = eb.make_generator(5)
    n = 1000
    x_start = MODES[0] + 0.4 * torch.randn(n, 2, generator=gen)

    stuck = S.run_chain(functools.partial(S.mala_step, four_modes, step_size=0.05, generator=gen), x_start,
                        n_steps=300, keep_trajectory=False)
    assert eb.diagnostics.mode_occupancy(stuck.state.x, MODES)[0] > 0.99

    ladder = [float(t) for t in torch.logspace(0, math.log10(40), 6)]
    pt = functools.partial(TEMPERING.tempering_step, four_modes, temperatures=ladder,
                           step_size=[0.05 * t for t in ladder], generator=gen)
    result = S.run_chain(pt, x_start.repeat(len(ladder), 1), n_steps=1, burn_in=500)
    cold = result.state.x.unflatten(0, (len(ladder), n))[0]               # (n, 2) at T = 1
    occupancy = eb.diagnostics.mode_occupancy(cold, MODES)
    assert (occupancy - 0.25).abs().max() < 0.06, occupancy
    # and within the modes the cold chains have the right width: E‖x − μ‖² = 2 · 0.4² = 0.32,
    # standard error 0.32/√1000 = 0.010, tolerance 0.05
    assert abs(spread(cold) - 0.32) < 0.05, spread(cold)

    schedule = [float(t) for t in torch.logspace(math.log10(40), 0, 20)]
    annealed = TEMPERING.annealed_langevin(four_modes, x_start, temperatures=schedule, steps_per_level=20,
                                           step=S.mala_step, step_size=[0.05 * t for t in schedule], generator=gen)
    assert annealed.trajectory.shape == (20, n, 2)
    occupancy = eb.diagnostics.mode_occupancy(annealed.state.x, MODES)
    assert (occupancy - 0.25).abs().max() < 0.06, occupancy
    assert abs(spread(annealed.state.x) - 0.32) < 0.05


def test_tempering_swaps_keep_the_ladder_and_report_probabilities():
    gen = eb.make_generator(6)
    ladder = [1.0, 2.0, 4.0]
    x = torch.randn(3 * 50, 2, generator=gen)
    state = S.init_state(four_modes, x)
    new, info = TEMPERING.tempering_step(four_modes, state, temperatures=ladder, step_size=0.05, generator=gen)
    assert info.swap_prob.shape == info.swapped.shape == (2, 50)
    assert ((info.swap_prob >= 0) & (info.swap_prob <= 1)).all()
    assert not (info.swapped[0] & info.swapped[1]).any()                 # one parity per step
    # the energies travel with their positions
    torch.testing.assert_close(new.energy, four_modes(new.x))

    # with a local move that does nothing, a step only permutes the states within each column
    def stay(energy, state, **kw):
        n_all = state.x.shape[0]
        return state, S.StepInfo(torch.ones(n_all), torch.ones(n_all, dtype=torch.bool))

    new, info = TEMPERING.tempering_step(four_modes, state, temperatures=ladder, step_size=0.05, generator=gen,
                                         local_step=stay)
    assert info.swapped.any()
    before, after = state.x.view(3, 50, 2), new.x.view(3, 50, 2)
    torch.testing.assert_close(after.sort(0).values, before.sort(0).values, atol=0, rtol=0)
    k = int(info.swapped.any(1).nonzero()[0])                             # a pair that swapped somewhere
    j = info.swapped[k]
    assert torch.equal(after[k, j], before[k + 1, j]) and torch.equal(after[k + 1, j], before[k, j])
    # HMC as the local move
    new, info = TEMPERING.tempering_step(four_modes, state, temperatures=ladder, step_size=0.1, generator=gen,
                                         local_step=S.hmc_step, n_leapfrog=3)
    assert new.x.shape == x.shape


def test_tempering_swap_probability_is_the_exchange_ratio():
    # swap k ↔ k+1 with probability min(1, exp((1/T_k − 1/T_{k+1})(E_k − E_{k+1}))), from cached energies
    gen = eb.make_generator(60)
    ladder = [1.0, 3.0]
    state = S.init_state(half_square, 2 * torch.randn(2 * 400, 2, generator=gen, dtype=torch.float64))

    def stay(energy, state, **kw):
        return state, S.StepInfo(torch.ones(800), torch.ones(800, dtype=torch.bool))

    _, info = TEMPERING.tempering_step(half_square, state, temperatures=ladder, step_size=0.1, generator=gen,
                                       local_step=stay)
    e = state.energy.view(2, 400)
    want = ((1 - 1 / 3) * (e[0] - e[1])).clamp(max=0).exp()
    torch.testing.assert_close(info.swap_prob[0], want)


def test_the_cold_chains_of_tempering_sample_a_gaussian():
    # On one Gaussian, the T = 1 chains of a ladder (1, 2, 4) are exact samples: 4,000 chains, mean
    # standard error √(1/4000) = 0.016, variance 0.022; tolerances 5×
    gen = eb.make_generator(61)
    ladder = [1.0, 2.0, 4.0]
    pt = functools.partial(TEMPERING.tempering_step, half_square, temperatures=ladder,
                           step_size=[0.5 * t for t in ladder], generator=gen)
    result = S.run_chain(pt, torch.zeros(3 * 4000, 1), n_steps=1, burn_in=200)
    levels = result.state.x.view(3, 4000)
    assert abs(float(levels[0].mean())) < 0.08
    for x, t in zip(levels, ladder):
        assert abs(float(x.var()) / t - 1) < 0.12, (float(x.var()), t)   # exp(−E/T) has variance T


def test_annealing_through_one_energy_per_level():
    # Noise-conditional energies: N(0, σ_k²) with σ_k falling from 3 to 0.5, all at T = 1. After the
    # last level the chains sample N(0, 0.25): 4,000 chains (d = 2), the variance's standard error
    # is 0.25·√(2/8000) = 0.004, tolerance 0.02.
    sigmas = [3.0, 2.0, 1.0, 0.5]
    energies = [functools.partial(lambda x, s: 0.5 * x.square().sum(1) / s**2, s=s) for s in sigmas]
    x0 = 3 * torch.randn(4000, 2, generator=eb.make_generator(62))
    result = TEMPERING.annealed_langevin(energies, x0, temperatures=[1.0] * 4, steps_per_level=30,
                                         step=S.mala_step, step_size=[0.5 * s**2 for s in sigmas],
                                         generator=eb.make_generator(63))
    assert result.trajectory.shape == (4, 4000, 2) and result.energies.shape == (4, 4000)
    for k, (energy, s) in enumerate(zip(energies, sigmas)):
        torch.testing.assert_close(result.energies[k], energy(result.trajectory[k]))   # E_k at level k
        assert abs(float(result.trajectory[k].var()) / s**2 - 1) < 0.1
    assert abs(float(result.state.x.var()) - 0.25) < 0.02
    torch.testing.assert_close(result.state.grad, result.state.x / 0.25)   # the last level's ∇E


def test_one_energy_per_level_equals_one_energy_when_they_are_the_same():
    x0 = torch.randn(200, 2, generator=eb.make_generator(64))
    kw = dict(temperatures=[4.0, 2.0, 1.0], steps_per_level=5, step=S.mala_step, step_size=[0.4, 0.2, 0.1])
    one = TEMPERING.annealed_langevin(four_modes, x0, generator=eb.make_generator(65), **kw)
    many = TEMPERING.annealed_langevin([four_modes] * 3, x0, generator=eb.make_generator(65), **kw)
    assert torch.equal(one.trajectory, many.trajectory) and torch.equal(one.accept_rate, many.accept_rate)


@pytest.mark.parametrize("step", [S.langevin_step, S.mala_step, functools.partial(S.hmc_step, n_leapfrog=3)],
                         ids=["ula", "mala", "hmc"])
def test_annealing_is_run_chain_level_by_level(step):
    # the order of draws: each level is run_chain of the step at that temperature, from the last state
    x0 = torch.randn(100, 2, generator=eb.make_generator(66))
    temps, etas = [3.0, 1.5, 1.0], [0.3, 0.15, 0.1]
    result = TEMPERING.annealed_langevin(four_modes, x0, temperatures=temps, steps_per_level=4, step=step,
                                         step_size=etas, generator=eb.make_generator(67))
    gen, state = eb.make_generator(67), x0
    for k, (t, eta) in enumerate(zip(temps, etas)):
        state = S.run_chain(functools.partial(step, four_modes, step_size=eta, temperature=t, generator=gen),
                            state, n_steps=4, keep_trajectory=False).state
        assert torch.equal(result.trajectory[k], state.x)
    assert torch.equal(result.state.x, state.x) and torch.equal(result.energies[-1], state.energy)


# ----------------------------------------------------------------------- bad inputs

X = torch.zeros(4, 2)
GEN = eb.make_generator(0)
STATE = S.init_state(half_square, X)

BAD = [
    ("ladder not increasing", lambda: TEMPERING.tempering_step(half_square, STATE, temperatures=[1.0, 1.0], step_size=0.1, generator=GEN), ValueError, "increase"),
    ("chains not a multiple of the ladder", lambda: TEMPERING.tempering_step(half_square, STATE, temperatures=[1.0, 2.0, 4.0], step_size=0.1, generator=GEN), ValueError, "multiple"),
    ("a tensor instead of a state", lambda: TEMPERING.tempering_step(half_square, X, temperatures=[1.0, 2.0], step_size=0.1, generator=GEN), TypeError, "init_state"),
    ("a negative temperature", lambda: TEMPERING.tempering_step(half_square, STATE, temperatures=[-1.0, 2.0], step_size=0.1, generator=GEN), ValueError, "temperatures[0]"),
    ("a local step without energies", lambda: TEMPERING.tempering_step(half_square, STATE, temperatures=[1.0, 2.0], step_size=0.1, generator=GEN, local_step=lambda e, s, **kw: (S.ChainState(s.x), None)), TypeError, "local_step"),
    ("one step size too few", lambda: TEMPERING.annealed_langevin(half_square, X, temperatures=[4.0, 2.0, 1.0], steps_per_level=2, step=S.mala_step, step_size=[0.1, 0.1], generator=GEN), ValueError, "one value per temperature"),
    ("an empty schedule", lambda: TEMPERING.annealed_langevin(half_square, X, temperatures=[], steps_per_level=2, step=S.mala_step, step_size=0.1, generator=GEN), ValueError, "temperatures"),
    ("zero steps per level", lambda: TEMPERING.annealed_langevin(half_square, X, temperatures=[2.0, 1.0], steps_per_level=0, step=S.mala_step, step_size=0.1, generator=GEN), ValueError, "steps_per_level"),
    ("no step kernel", lambda: TEMPERING.annealed_langevin(half_square, X, temperatures=[2.0, 1.0], steps_per_level=2, step="mala", step_size=0.1, generator=GEN), TypeError, "eb.samplers.mala_step"),
    ("one energy too few", lambda: TEMPERING.annealed_langevin([half_square], X, temperatures=[2.0, 1.0], steps_per_level=2, step=S.mala_step, step_size=0.1, generator=GEN), ValueError, "one energy per entry of temperatures"),
    ("an empty batch", lambda: TEMPERING.annealed_langevin(half_square, torch.zeros(0, 2), temperatures=[2.0, 1.0], steps_per_level=2, step=S.mala_step, step_size=0.1, generator=GEN), ValueError, "empty"),
    ("not a generator", lambda: TEMPERING.annealed_langevin(half_square, X, temperatures=[2.0, 1.0], steps_per_level=2, step=S.mala_step, step_size=0.1, generator=1), TypeError, "make_generator"),
]


@pytest.mark.parametrize("what, call, error, fix", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(what, call, error, fix):
    with pytest.raises(error) as info:
        call()
    assert fix in str(info.value), f"{what}: message {str(info.value)!r} should mention {fix!r}"
