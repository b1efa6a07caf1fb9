"""Samplers: stationarity on known targets, exact KL against the grid, contracts, costs, diagnostics.

Tolerances are stated next to each test as multiples of the Monte Carlo standard error of the
statistic under exact sampling, so a test fails when the sampler is wrong, not by chance.
"""

import functools
import math

import pytest
import torch

import ebmbook as eb

S = eb.samplers

MEAN = torch.tensor([1.0, -1.0])
COV = torch.tensor([[1.0, 0.5], [0.5, 2.0]])


def gaussian_2d(x):
    return eb.energies.gaussian(x, MEAN, covariance=COV)


def half_square(x):
    """E = ½‖x‖², the standard normal."""
    return 0.5 * x.flatten(1).square().sum(1)


MODES = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])


def four_modes(x):
    """Four equal Gaussians (std 0.4) at the corners of a square: barriers of about 28 nats."""
    return eb.energies.gaussian_mixture(x, MODES, 0.4)


def kernel(step, energy, generator, **kw):
    return functools.partial(step, energy, generator=generator, **kw)


STEPS = {
    "mh": (S.mh_step, dict(step_size=1.2)),
    "ula": (S.langevin_step, dict(step_size=0.1)),
    "mala": (S.mala_step, dict(step_size=0.5)),
    "hmc": (S.hmc_step, dict(step_size=0.4, n_leapfrog=5)),
}


# ------------------------------------------------------------------------------ stationarity

@pytest.mark.parametrize("name", ["mh", "mala", "hmc"])
def test_exact_samplers_sample_a_correlated_gaussian(name):
    # 20,000 independent chains, last state after 400 steps. Standard errors of exact samples:
    # mean ≤ √(2/20000) = 0.010, covariance entries ≤ √(2·2²/20000) = 0.020; tolerances are 5×.
    # The step sizes are large on purpose: ULA at η = 0.5 would inflate the variances by 13–46 %.
    step, kw = STEPS[name]
    x0 = torch.zeros(20000, 2)
    result = S.run_chain(kernel(step, gaussian_2d, eb.make_generator(0), **kw), x0, n_steps=400, thin=400)
    x = result.trajectory[-1]                                             # (n, d)
    torch.testing.assert_close(x.mean(0), MEAN, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), COV, atol=0.10, rtol=0)
    assert 0.3 < result.accept_rate.mean() < 1.0


def test_ula_at_a_large_step_fails_the_same_covariance_check():
    """The stationarity check above can fail: ULA at the step size MALA uses is visibly biased."""
    x0 = torch.zeros(20000, 2)
    result = S.run_chain(kernel(S.langevin_step, gaussian_2d, eb.make_generator(0), step_size=0.5), x0,
                         n_steps=200, keep_trajectory=False)
    err = (torch.cov(result.state.x.T) - COV).abs().max()
    assert err > 0.3


@pytest.mark.parametrize("eta", [0.1, 0.5, 1.0])
def test_ula_stationary_variance_on_a_standard_normal(eta):
    # On E = x²/2, ULA is x' = (1 − η)x + √(2η)ξ, whose stationary variance is 1/(1 − η/2).
    # 100,000 chains: the relative standard error of a variance is √(2/n) = 0.45 %; rtol 2 %.
    x0 = torch.zeros(100000, 1)
    result = S.run_chain(kernel(S.langevin_step, half_square, eb.make_generator(1), step_size=eta), x0,
                         n_steps=200, burn_in=200, thin=50)
    var = result.trajectory.var(dim=1).mean()                             # average of 4 kept steps
    want = 1 / (1 - eta / 2)
    assert abs(var / want - 1) < 0.02, (var, want)
    assert var - 1 > 0.03                                                 # the bias is resolved


def test_mala_reaches_the_grid_kl_floor_on_eight_gaussians_and_ula_does_not():
    # Eight Gaussians (radius 4/√2, std 0.5/√2), 20,000 chains from the broad start N(0, 3²I), 150
    # steps at η = 0.1. By symmetry each mode receives 1/8 of the chains, so MALA's histogram is
    # that of exact samples: its KL must sit within 0.01 of the floor. ULA at the same η has
    # modes 1.67× too wide.
    gen = eb.make_generator(2)
    bins = eb.grid.make_grid(-6, 6, 48, dim=2)
    energy = eb.energies.eight_gaussians
    floor = float(eb.grid.kl_floor(energy, bins, 20000, generator=gen))
    x0 = 3 * torch.randn(20000, 2, generator=gen)
    kls = {}
    for step in (S.mala_step, S.langevin_step):
        result = S.run_chain(kernel(step, energy, gen, step_size=0.1), x0, n_steps=150, keep_trajectory=False)
        kls[step.__name__] = float(S.grid_kl(result.state.x, energy, bins))
    assert abs(kls["mala_step"] - floor) < 0.01, (kls, floor)
    assert kls["langevin_step"] - floor > 0.05, (kls, floor)


def test_hmc_energy_error_shrinks_like_step_size_squared():
    # Leapfrog is second order: the energy error ΔH of a fixed-length trajectory scales as ε².
    state = S.init_state(gaussian_2d, torch.randn(4000, 2, generator=eb.make_generator(3)) + MEAN)
    errors = []
    for eps in (0.2, 0.1):
        _, info = S.hmc_step(gaussian_2d, state, step_size=eps, n_leapfrog=int(round(1 / eps)),
                             generator=eb.make_generator(4))
        errors.append(info.energy_error.abs().mean())
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


# ----------------------------------------------------------------------- multimodality

def test_tempering_and_annealing_balance_modes_where_mala_stays_stuck():
    # All chains start in one mode. Exact occupancy is 1/4 per mode; with 1,000 chains its standard
    # error is √(¼·¾/1000) = 0.014, tolerance 0.06.
    gen = eb.make_generator(5)
    n = 1000
    x_start = MODES[0] + 0.4 * torch.randn(n, 2, generator=gen)

    stuck = S.run_chain(kernel(S.mala_step, four_modes, gen, step_size=0.05), x_start, n_steps=300,
                        keep_trajectory=False)
    assert S.mode_occupancy(stuck.state.x, MODES)[0] > 0.99

    ladder = [float(t) for t in torch.logspace(0, math.log10(40), 6)]
    pt = kernel(S.tempering_step, four_modes, gen, temperatures=ladder, step_size=[0.05 * t for t in ladder])
    result = S.run_chain(pt, x_start.repeat(len(ladder), 1), n_steps=1, burn_in=500)
    cold = result.state.x.unflatten(0, (len(ladder), n))[0]               # (n, 2) at T = 1
    occupancy = S.mode_occupancy(cold, MODES)
    assert (occupancy - 0.25).abs().max() < 0.06, occupancy
    # and within the modes the cold chains have the right width: E‖x − μ‖² = 2 · 0.4² = 0.32,
    # standard error 0.32/√1000 = 0.010, tolerance 0.05
    assert abs(spread(cold) - 0.32) < 0.05, spread(cold)

    schedule = [float(t) for t in torch.logspace(math.log10(40), 0, 20)]
    annealed = S.annealed_langevin(four_modes, x_start, temperatures=schedule, steps_per_level=20,
                                   step_size=[0.05 * t for t in schedule], generator=gen, adjusted=True)
    assert annealed.trajectory.shape == (20, n, 2)
    occupancy = S.mode_occupancy(annealed.state.x, MODES)
    assert (occupancy - 0.25).abs().max() < 0.06, occupancy
    assert abs(spread(annealed.state.x) - 0.32) < 0.05


def spread(x):
    """Mean squared distance to the nearest mode."""
    return float(torch.cdist(x, MODES).min(1).values.square().mean())


def test_tempering_swaps_keep_the_ladder_and_report_probabilities():
    gen = eb.make_generator(6)
    ladder = [1.0, 2.0, 4.0]
    x = torch.randn(3 * 50, 2, generator=gen)
    state = S.init_state(four_modes, x)
    new, info = S.tempering_step(four_modes, state, temperatures=ladder, step_size=0.05, generator=gen)
    assert info.swap_prob.shape == info.swapped.shape == (2, 50)
    assert ((info.swap_prob >= 0) & (info.swap_prob <= 1)).all()
    assert not (info.swapped[0] & info.swapped[1]).any()                 # one parity per step
    # the energies travel with their positions
    torch.testing.assert_close(new.energy, four_modes(new.x))
    # with a local move that does nothing, a step only permutes the states within each column
    def stay(energy, state, **kw):
        n_all = state.x.shape[0]
        return state, S.StepInfo(torch.ones(n_all), torch.ones(n_all, dtype=torch.bool))

    new, info = S.tempering_step(four_modes, state, temperatures=ladder, step_size=0.05, generator=gen,
                                 local_step=stay)
    assert info.swapped.any()
    before, after = state.x.view(3, 50, 2), new.x.view(3, 50, 2)
    torch.testing.assert_close(after.sort(0).values, before.sort(0).values, atol=0, rtol=0)
    k = int(info.swapped.any(1).nonzero()[0])                             # a pair that swapped somewhere
    j = info.swapped[k]
    assert torch.equal(after[k, j], before[k + 1, j]) and torch.equal(after[k + 1, j], before[k, j])
    # HMC as the local move
    new, info = S.tempering_step(four_modes, state, temperatures=ladder, step_size=0.1, generator=gen,
                                 local_step=S.hmc_step, n_leapfrog=3)
    assert new.x.shape == x.shape


# ----------------------------------------------------------------------- contracts

@pytest.mark.parametrize("name", ["mala", "hmc", "mh"])
def test_acceptance_is_a_probability(name):
    step, kw = STEPS[name]
    x = torch.randn(500, 2, generator=eb.make_generator(7))
    for size in (1e-3, 0.3, 3.0, 30.0):
        _, info = step(gaussian_2d, x, generator=eb.make_generator(8), **{**kw, "step_size": size})
        assert info.accept_prob.shape == (500,) and info.accepted.dtype == torch.bool
        assert ((info.accept_prob >= 0) & (info.accept_prob <= 1)).all()
    assert info.accept_prob.mean() < 0.05                                 # a huge step is rejected


def nan_beyond_half(x):
    """A Gaussian that is NaN for x₁ > 0.5 and +inf for x₂ > 2."""
    e = gaussian_2d(x)
    e = torch.where(x[:, 0] > 0.5, torch.nan, e)
    return torch.where(x[:, 1] > 2, torch.inf, e)


@pytest.mark.parametrize("name", ["mh", "mala", "hmc"])
def test_nan_and_inf_proposals_are_rejected(name):
    step, kw = STEPS[name]
    x0 = torch.full((2000, 2), -1.0)
    result = S.run_chain(kernel(step, nan_beyond_half, eb.make_generator(9), **kw), x0, n_steps=100)
    traj = result.trajectory
    assert (traj[..., 0] <= 0.5).all() and (traj[..., 1] <= 2).all()
    assert torch.isfinite(result.energies).all()
    assert result.accept_rate.mean() > 0.1                                # it still moves


def test_ula_raises_when_it_diverges():
    # On E = x²/2 a step of 3 multiplies x by −2 each time: float32 overflows within ~130 steps
    step = kernel(S.langevin_step, half_square, eb.make_generator(10), step_size=3.0)
    with pytest.raises(FloatingPointError, match=r"step_size=3\.0.*smaller step_size"):
        S.run_chain(step, torch.ones(10, 1), n_steps=400)
    with pytest.raises(FloatingPointError, match=r"smaller step_size.*3\.0"):   # the tensor form
        x = torch.ones(10, 1)
        for _ in range(400):
            x, _ = S.langevin_step(half_square, x, step_size=3.0, generator=eb.make_generator(10))


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_same_seed_same_chains(name):
    step, kw = STEPS[name]
    x0 = torch.randn(100, 2, generator=eb.make_generator(11))
    runs = [S.run_chain(kernel(step, gaussian_2d, eb.make_generator(seed), **kw), x0, n_steps=20).trajectory
            for seed in (12, 12, 13)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_tensor_form_and_state_form_agree(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(14))
    x_tensor, info_tensor = step(gaussian_2d, x, generator=eb.make_generator(15), **kw)
    state, info_state = step(gaussian_2d, S.init_state(gaussian_2d, x), generator=eb.make_generator(15), **kw)
    assert isinstance(x_tensor, torch.Tensor) and isinstance(state, S.ChainState)
    assert torch.equal(x_tensor, state.x)
    assert torch.equal(info_tensor.accepted, info_state.accepted)
    torch.testing.assert_close(state.energy, gaussian_2d(state.x))
    if state.grad is not None:
        torch.testing.assert_close(state.grad, eb.energies.grad_energy(gaussian_2d, state.x))


def test_a_hand_written_langevin_step_reproduces_the_package():
    def my_langevin_step(energy, x, step_size, generator):
        g = eb.energies.grad_energy(energy, x)
        xi = torch.randn(x.shape, generator=generator, device=x.device)
        return x - step_size * g + (2 * step_size) ** 0.5 * xi

    x0 = torch.randn(256, 2, generator=eb.make_generator(16))
    ours = my_langevin_step(gaussian_2d, x0, 0.01, eb.make_generator(17))
    theirs, _ = S.langevin_step(gaussian_2d, x0, step_size=0.01, generator=eb.make_generator(17))
    torch.testing.assert_close(ours, theirs)


def test_a_hand_written_mala_step_reproduces_the_package():
    def my_mala_step(energy, x, eta, generator):
        e, g = eb.energies.value_and_grad(energy, x)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        y = x - eta * g + math.sqrt(2 * eta) * xi
        e_y, g_y = eb.energies.value_and_grad(energy, y)
        log_q_fwd = -((y - x + eta * g) ** 2).sum(1) / (4 * eta)
        log_q_bwd = -((x - y + eta * g_y) ** 2).sum(1) / (4 * eta)
        alpha = torch.exp(torch.clamp(e - e_y + log_q_bwd - log_q_fwd, max=0))
        accept = torch.rand(x.shape[0], generator=generator, dtype=x.dtype) < alpha
        return torch.where(accept[:, None], y, x)

    x0 = torch.randn(256, 2, generator=eb.make_generator(18), dtype=torch.float64)
    ours = my_mala_step(gaussian_2d, x0, 0.8, eb.make_generator(19))
    theirs, _ = S.mala_step(gaussian_2d, x0, step_size=0.8, generator=eb.make_generator(19))
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_temperature_is_the_energy_divided_by_t(name):
    step, kw = STEPS[name]
    x = torch.randn(128, 2, generator=eb.make_generator(20), dtype=torch.float64)
    hot, _ = step(gaussian_2d, x, temperature=2.5, generator=eb.make_generator(21), **kw)
    scaled, _ = step(lambda y: gaussian_2d(y) / 2.5, x, generator=eb.make_generator(21), **kw)
    torch.testing.assert_close(hot, scaled)
    per_chain, _ = step(gaussian_2d, x, temperature=torch.full((128,), 2.5, dtype=torch.float64),
                        generator=eb.make_generator(21), **kw)
    torch.testing.assert_close(per_chain, hot)


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_inputs_are_never_modified(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(22))
    state = S.init_state(gaussian_2d, x)
    copies = [t.clone() for t in state]
    versions = [t._version for t in state]
    step(gaussian_2d, state, generator=eb.make_generator(23), **kw)
    step(gaussian_2d, x, generator=eb.make_generator(23), **kw)
    S.run_chain(kernel(step, gaussian_2d, eb.make_generator(23), **kw), state, n_steps=3)
    S.run_chain(kernel(step, gaussian_2d, eb.make_generator(23), **kw), x, n_steps=3)
    for t, c, v in zip(state, copies, versions):
        assert torch.equal(t, c) and t._version == v


class CountingEnergy:
    """Wraps an energy and counts its calls with and without an input gradient."""

    def __init__(self, energy):
        self.energy, self.with_grad, self.without_grad = energy, 0, 0

    def __call__(self, x):
        if x.requires_grad:
            self.with_grad += 1
        else:
            self.without_grad += 1
        return self.energy(x)


@pytest.mark.parametrize("name, grads_per_step, forwards_per_step",
                         [("ula", 1, 0), ("mala", 1, 0), ("hmc", 5, 0), ("mh", 0, 1)])
def test_cost_per_step(name, grads_per_step, forwards_per_step):
    step, kw = STEPS[name]
    energy = CountingEnergy(gaussian_2d)
    state = S.init_state(energy, torch.randn(32, 2, generator=eb.make_generator(24)), with_grad=name != "mh")
    energy.with_grad = energy.without_grad = 0
    S.run_chain(kernel(step, energy, eb.make_generator(25), **kw), state, n_steps=10)
    assert energy.with_grad == 10 * grads_per_step
    assert energy.without_grad == 10 * forwards_per_step


def test_sampling_leaves_parameter_gradients_alone():
    net = eb.energies.MLPEnergy(2, hidden=(16,))
    x = torch.randn(64, 2, generator=eb.make_generator(26))
    S.run_chain(kernel(S.mala_step, net, eb.make_generator(27), step_size=0.01), x, n_steps=5)
    assert all(p.grad is None for p in net.parameters())


def test_float64_and_event_shapes():
    x = torch.randn(16, 3, 4, generator=eb.make_generator(28), dtype=torch.float64)   # images of 3×4
    for step, kw in STEPS.values():
        result = S.run_chain(kernel(step, half_square, eb.make_generator(29), **kw), x, n_steps=4, thin=2)
        assert result.trajectory.shape == (2, 16, 3, 4) and result.trajectory.dtype == torch.float64
        assert result.energies.shape == (2, 16) and result.accept_rate.shape == (16,)


def test_run_chain_burn_in_thinning_and_final_state():
    gen = eb.make_generator(30)
    step = kernel(S.mala_step, gaussian_2d, gen, step_size=0.3)
    result = S.run_chain(step, torch.zeros(8, 2), n_steps=10, burn_in=5, thin=3, progress=True)
    assert result.trajectory.shape == (3, 8, 2)
    torch.testing.assert_close(result.energies, gaussian_2d(result.trajectory.flatten(0, 1)).view(3, 8))
    # without a trajectory, the same chains end in the same place
    again = S.run_chain(kernel(S.mala_step, gaussian_2d, eb.make_generator(30), step_size=0.3), torch.zeros(8, 2),
                        n_steps=10, burn_in=5, keep_trajectory=False)
    assert again.trajectory is None and torch.equal(again.state.x, result.state.x)
    # continuing from the final state
    more = S.run_chain(step, result.state, n_steps=2)
    assert more.trajectory.shape == (2, 8, 2)
    assert ((result.accept_rate >= 0) & (result.accept_rate <= 1)).all()
    assert torch.equal(S.acceptance_rate(torch.tensor([[True, False], [True, True]])), torch.tensor([1.0, 0.5]))


# ----------------------------------------------------------------------- the heuristic step

def test_nominal_temperature():
    assert S.nominal_temperature(10, 0.005) == pytest.approx(1.25e-6, rel=1e-12)
    assert S.nominal_temperature(0.01, math.sqrt(0.02)) == pytest.approx(1.0)


def test_noisy_gradient_step_is_ula_at_its_nominal_temperature():
    x = torch.randn(64, 2, generator=eb.make_generator(31))
    ula, _ = S.langevin_step(gaussian_2d, x, step_size=0.05, generator=eb.make_generator(32))
    noisy, _ = S.noisy_gradient_step(gaussian_2d, x, step_size=0.05, noise_std=math.sqrt(0.1),
                                     generator=eb.make_generator(32))
    assert torch.equal(ula, noisy)
    # on E = x²/2, x' = (1 − η)x + σξ has variance σ²/(2η − η²) = T/(1 − η/2): a cold chain
    eta, sigma = 0.1, 0.05
    result = S.run_chain(kernel(S.noisy_gradient_step, half_square, eb.make_generator(33), step_size=eta,
                                noise_std=sigma), torch.zeros(50000, 1), n_steps=1, burn_in=200)
    want = sigma**2 / (2 * eta - eta**2)
    assert abs(result.state.x.var() / want - 1) < 0.03
    assert want == pytest.approx(S.nominal_temperature(eta, sigma) / (1 - eta / 2))


def test_clipping_changes_the_drift():
    x = torch.full((4, 2), 5.0)                                           # ∇E = x: clipped to 0.1
    out, _ = S.noisy_gradient_step(half_square, x, step_size=1.0, noise_std=0.01, clip_grad=0.1,
                                   generator=eb.make_generator(34))
    xi = torch.randn(x.shape, generator=eb.make_generator(34))
    torch.testing.assert_close(out, x - 0.1 + 0.01 * xi)


# ----------------------------------------------------------------------- diagnostics

def ar1(phi, n_steps, n_chains, generator):
    """x_t = φ x_{t−1} + √(1 − φ²) ε_t from the stationary N(0, 1)."""
    noise = torch.randn(n_steps, n_chains, generator=generator, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[0] = noise[0]
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + math.sqrt(1 - phi**2) * noise[t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ess_of_ar1_matches_the_closed_form(phi):
    # ESS = nT(1 − φ)/(1 + φ) for AR(1); with 64 chains of 4,000 steps the estimator is within a
    # few percent (its relative spread here is about 1.5 %); tolerance 6 %.
    x = ar1(phi, 4000, 64, eb.make_generator(35))
    want = x.numel() * (1 - phi) / (1 + phi)
    for split in (True, False):
        got = float(S.effective_sample_size(x, split=split))
        assert abs(got / want - 1) < 0.06, (phi, split, got, want)
    rho = S.autocorrelation(x, max_lag=3).mean(1)
    torch.testing.assert_close(rho, torch.tensor([phi**k for k in range(4)], dtype=torch.float64), atol=0.02, rtol=0)


def test_ess_is_vectorized_and_sees_stuck_chains():
    gen = eb.make_generator(36)
    x = torch.stack([ar1(0.0, 1000, 32, gen), ar1(0.8, 1000, 32, gen)], dim=2)   # (T, n, 2)
    ess = S.effective_sample_size(x)
    assert ess.shape == (2,) and ess[0] > 3 * ess[1]
    # chains that each mix well but sit in different modes carry little information together
    offsets = torch.tensor([-3.0, 3.0], dtype=torch.float64).repeat(16)            # (32,)
    stuck = ar1(0.0, 1000, 32, gen) + offsets
    assert S.effective_sample_size(stuck) < 0.01 * stuck.numel()
    assert S.effective_sample_size(stuck[:, :1]) > 0.5 * 1000                      # one chain looks fine


def test_grid_kl_takes_trajectories():
    gen = eb.make_generator(37)
    bins = eb.grid.make_grid(-5, 5, 20, dim=2)
    x = eb.data.banana(2000, generator=gen)
    flat = S.grid_kl(x, eb.energies.banana, bins)
    assert flat == S.grid_kl(x.view(4, 500, 2), eb.energies.banana, bins)
    assert flat < 0.1


# ----------------------------------------------------------------------- bad inputs

def wrong_shape_energy(x):
    return x.sum(1, keepdim=True)                                         # (n, 1) instead of (n,)


X = torch.zeros(4, 2)
GEN = eb.make_generator(0)
STATE = S.init_state(gaussian_2d, X)

BAD = [
    ("step size zero", lambda: S.mala_step(gaussian_2d, X, step_size=0.0, generator=GEN), ValueError, "step_size"),
    ("negative step size", lambda: S.langevin_step(gaussian_2d, X, step_size=-0.1, generator=GEN), ValueError, "step_size"),
    ("NaN step size", lambda: S.mh_step(gaussian_2d, X, step_size=math.nan, generator=GEN), ValueError, "step_size"),
    ("step sizes of wrong shape", lambda: S.mala_step(gaussian_2d, X, step_size=torch.ones(3), generator=GEN), ValueError, "one value per chain"),
    ("temperature zero", lambda: S.mala_step(gaussian_2d, X, step_size=0.1, temperature=0.0, generator=GEN), ValueError, "temperature"),
    ("no leapfrog step", lambda: S.hmc_step(gaussian_2d, X, step_size=0.1, n_leapfrog=0, generator=GEN), ValueError, "n_leapfrog"),
    ("energy of wrong shape", lambda: S.mala_step(wrong_shape_energy, X, step_size=0.1, generator=GEN), ValueError, "squeeze"),
    ("positions without batch dimension", lambda: S.mala_step(gaussian_2d, torch.zeros(2), step_size=0.1, generator=GEN), ValueError, "x[None]"),
    ("integer positions", lambda: S.mala_step(gaussian_2d, torch.zeros(4, 2, dtype=torch.long), step_size=0.1, generator=GEN), ValueError, "float"),
    ("gradient of wrong shape", lambda: S.mala_step(gaussian_2d, STATE._replace(grad=torch.zeros(4, 3)), step_size=0.1, generator=GEN), ValueError, "init_state"),
    ("start where the energy is NaN", lambda: S.mala_step(nan_beyond_half, torch.ones(4, 2), step_size=0.1, generator=GEN), ValueError, "finite"),
    ("not a generator", lambda: S.mala_step(gaussian_2d, X, step_size=0.1, generator=0), TypeError, "make_generator"),
    ("generator on another device", lambda: S.mala_step(gaussian_2d, torch.zeros(4, 2, device="meta"), step_size=0.1, generator=GEN), ValueError, "make_generator"),
    ("no noise", lambda: S.noisy_gradient_step(gaussian_2d, X, step_size=0.1, noise_std=0.0, generator=GEN), ValueError, "noise_std"),
    ("zero steps", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), X, n_steps=0), ValueError, "n_steps"),
    ("thinning past the end", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), X, n_steps=3, thin=5), ValueError, "thin"),
    ("a step that returns tensors", lambda: S.run_chain(lambda s: (s.x, None), X, n_steps=2), TypeError, "ChainState"),
    ("ladder not increasing", lambda: S.tempering_step(gaussian_2d, X, temperatures=[1.0, 1.0], step_size=0.1, generator=GEN), ValueError, "increase"),
    ("chains not a multiple of the ladder", lambda: S.tempering_step(gaussian_2d, X, temperatures=[1.0, 2.0, 4.0], step_size=0.1, generator=GEN), ValueError, "multiple"),
    ("one step size too few", lambda: S.annealed_langevin(gaussian_2d, X, temperatures=[4.0, 2.0, 1.0], steps_per_level=2, step_size=[0.1, 0.1], generator=GEN), ValueError, "one value per temperature"),
    ("ESS of too short a trace", lambda: S.effective_sample_size(torch.zeros(5, 3)), ValueError, "at least 4"),
]


@pytest.mark.parametrize("what, call, error, fix", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(what, call, error, fix):
    with pytest.raises(error) as info:
        call()
    assert fix in str(info.value), f"{what}: message {str(info.value)!r} should mention {fix!r}"


@pytest.mark.gpu
def test_mala_on_cuda_matches_its_cpu_statistics():
    device = torch.device("cuda")
    gen = eb.make_generator(38, device)
    energy = lambda x: eb.energies.gaussian(x, MEAN.to(device), covariance=COV.to(device))
    result = S.run_chain(kernel(S.mala_step, energy, gen, step_size=0.5), torch.zeros(20000, 2, device=device),
                         n_steps=400, keep_trajectory=False)
    x = result.state.x.cpu()
    torch.testing.assert_close(x.mean(0), MEAN, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), COV, atol=0.10, rtol=0)
