"""Samplers: stationarity on known targets, exact KL against the grid, the shared Metropolis block,
strict states, the order of random draws, costs and contracts.

Tolerances are stated next to each test as multiples of the Monte Carlo standard error of the
statistic under exact sampling, so a test fails when the sampler is wrong, not by chance.
Tempering and annealing are tested in test_tempering.py, diagnostics in test_diagnostics.py.
"""

import functools
import math

import pytest
import torch

import ebmbook as eb
import ebmbook.diagnostics  # noqa: F401  (eb.diagnostics before the package imports it)

S = eb.samplers

MEAN = torch.tensor([1.0, -1.0])
COV = torch.tensor([[1.0, 0.5], [0.5, 2.0]])


def gaussian_2d(x):
    return eb.energies.gaussian(x, MEAN, covariance=COV)


def half_square(x):
    """E = ½‖x‖², the standard normal."""
    return 0.5 * x.flatten(1).square().sum(1)


def kernel(step, energy, generator, **kw):
    return functools.partial(step, energy, generator=generator, **kw)


STEPS = {
    "mh": (S.mh_step, dict(proposal_std=1.2)),
    "ula": (S.langevin_step, dict(step_size=0.1)),
    "mala": (S.mala_step, dict(step_size=0.5)),
    "hmc": (S.hmc_step, dict(step_size=0.4, n_leapfrog=5)),
}
SCALE = {"mh": "proposal_std", "ula": "step_size", "mala": "step_size", "hmc": "step_size"}


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


@pytest.mark.parametrize("name", ["mh", "mala", "hmc"])
def test_per_chain_step_sizes_each_sample_the_target(name):
    # Four groups of 4,000 chains with step sizes spread over a factor 8, in one batch, on the
    # correlated Gaussian. Each group's mean has standard error ≤ √(2/4000) = 0.022 (tolerance
    # 0.1) and its variances ≤ 2·√(2/4000) = 0.045 (tolerance 0.2); the acceptance falls with the step.
    step, kw = STEPS[name]
    base = kw[SCALE[name]]
    sizes = (torch.tensor([0.25, 0.5, 1.0, 2.0]) * base).repeat_interleave(4000)     # (16000,)
    kw = {**kw, SCALE[name]: sizes}
    result = S.run_chain(kernel(step, gaussian_2d, eb.make_generator(40), **kw), torch.zeros(16000, 2),
                         n_steps=200, keep_trajectory=False)
    groups = result.state.x.view(4, 4000, 2)
    for x in groups:
        torch.testing.assert_close(x.mean(0), MEAN, atol=0.1, rtol=0)
        torch.testing.assert_close(x.var(0), COV.diagonal(), atol=0.2, rtol=0)
    rates = result.accept_rate.view(4, 4000).mean(1)
    assert (rates[1:] < rates[:-1]).all(), rates


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
        kls[step.__name__] = float(eb.grid.kl_from_samples(result.state.x, energy, bins))
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


def test_hmc_with_one_leapfrog_step_is_mala_with_half_eps_squared():
    # The docstrings' relation: one leapfrog step of ε is MALA with η = ε²/2 (same draws: randn, rand)
    x = torch.randn(256, 2, generator=eb.make_generator(41), dtype=torch.float64)
    state = S.init_state(gaussian_2d, x)
    eps = 0.7
    hmc, hmc_info = S.hmc_step(gaussian_2d, state, step_size=eps, n_leapfrog=1, generator=eb.make_generator(42))
    mala, mala_info = S.mala_step(gaussian_2d, state, step_size=eps**2 / 2, generator=eb.make_generator(42))
    torch.testing.assert_close(hmc.x, mala.x)
    torch.testing.assert_close(hmc_info.accept_prob, mala_info.accept_prob)


# ----------------------------------------------------------------------- the Metropolis block

@pytest.mark.parametrize("name", ["mala", "hmc", "mh"])
def test_acceptance_is_a_probability(name):
    step, kw = STEPS[name]
    state = S.init_state(gaussian_2d, torch.randn(500, 2, generator=eb.make_generator(7)))
    for size in (1e-3, 0.3, 3.0, 30.0):
        _, info = step(gaussian_2d, state, generator=eb.make_generator(8), **{**kw, SCALE[name]: size})
        assert info.accept_prob.shape == (500,) and info.accepted.dtype == torch.bool
        assert ((info.accept_prob >= 0) & (info.accept_prob <= 1)).all()
    assert info.accept_prob.mean() < 0.05                                 # a huge step is rejected


def nan_beyond_half(x):
    """A Gaussian that is NaN for x₁ > 0.5 and +inf for x₂ > 2."""
    e = gaussian_2d(x)
    e = torch.where(x[:, 0] > 0.5, torch.nan, e)
    return torch.where(x[:, 1] > 2, torch.inf, e)


def nan_gradient_beyond_half(x):
    """A finite value everywhere, but a NaN gradient for x₁ > 0.5 (√0's derivative times 0)."""
    return gaussian_2d(x) + torch.sqrt(torch.where(x[:, 0] > 0.5, x[:, 0] - x[:, 0], 1.0))


@pytest.mark.parametrize("name", ["mh", "mala", "hmc"])
def test_nan_and_inf_proposals_are_rejected(name):
    step, kw = STEPS[name]
    x0 = torch.full((2000, 2), -1.0)
    result = S.run_chain(kernel(step, nan_beyond_half, eb.make_generator(9), **kw), x0, n_steps=100)
    traj = result.trajectory
    assert (traj[..., 0] <= 0.5).all() and (traj[..., 1] <= 2).all()
    assert torch.isfinite(result.energies).all()
    assert result.accept_rate.mean() > 0.1                                # it still moves


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_a_nan_gradient_with_a_finite_energy_is_rejected(name):
    step, kw = STEPS[name]
    x = torch.full((2000, 2), -1.0)
    assert torch.isfinite(nan_gradient_beyond_half(x + 2)).all()         # the value alone is fine there
    result = S.run_chain(kernel(step, nan_gradient_beyond_half, eb.make_generator(43), **kw), x, n_steps=50)
    assert (result.trajectory[..., 0] <= 0.5).all()
    assert torch.isfinite(result.state.grad).all()
    assert result.accept_rate.mean() > 0.1


def test_ula_raises_when_it_diverges():
    # On E = x²/2 a step of 3 multiplies x by −2 each time: float32 overflows within ~130 steps
    step = kernel(S.langevin_step, half_square, eb.make_generator(10), step_size=3.0)
    with pytest.raises(FloatingPointError, match=r"step_size=3\.0.*smaller step_size"):
        S.run_chain(step, torch.ones(10, 1), n_steps=400)
    with pytest.raises(FloatingPointError, match=r"smaller step_size.*3\.0"):   # a hand-written loop over states
        state = S.init_state(half_square, torch.ones(10, 1))
        for _ in range(400):
            state, _ = S.langevin_step(half_square, state, step_size=3.0, generator=eb.make_generator(10))


def test_noisy_gradient_step_divergence_speaks_in_the_callers_step_and_noise():
    step = kernel(S.noisy_gradient_step, half_square, eb.make_generator(44), step_size=3.0, noise_std=0.1)
    with pytest.raises(FloatingPointError, match=r"step_size=3\.0 and noise_std=0\.1.*smaller step_size"):
        S.run_chain(step, torch.ones(10, 1), n_steps=400)


# ----------------------------------------------------------------------- states and the order of draws

@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_same_seed_same_chains(name):
    step, kw = STEPS[name]
    x0 = torch.randn(100, 2, generator=eb.make_generator(11))
    runs = [S.run_chain(kernel(step, gaussian_2d, eb.make_generator(seed), **kw), x0, n_steps=20).trajectory
            for seed in (12, 12, 13)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_a_step_takes_states_only(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(14))
    with pytest.raises(TypeError, match=r"eb\.samplers\.init_state\(energy, x\)"):
        step(gaussian_2d, x, generator=eb.make_generator(15), **kw)


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_an_incomplete_state_is_completed_by_the_first_step(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(14))
    bare, info_bare = step(gaussian_2d, S.ChainState(x), generator=eb.make_generator(15), **kw)
    state, info_state = step(gaussian_2d, S.init_state(gaussian_2d, x), generator=eb.make_generator(15), **kw)
    assert isinstance(bare, S.ChainState) and isinstance(state, S.ChainState)
    assert torch.equal(bare.x, state.x)
    assert torch.equal(info_bare.accepted, info_state.accepted)
    torch.testing.assert_close(state.energy, gaussian_2d(state.x))
    if state.grad is not None:
        torch.testing.assert_close(state.grad, eb.energies.grad_energy(gaussian_2d, state.x))
    # a state with E but no ∇E: MH uses it as it is, the gradient steps recompute both
    partial_state = S.init_state(gaussian_2d, x, with_grad=False)
    again, _ = step(gaussian_2d, partial_state, generator=eb.make_generator(15), **kw)
    assert torch.equal(again.x, state.x)


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_run_chain_takes_a_tensor_start(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(45))
    from_tensor = S.run_chain(kernel(step, gaussian_2d, eb.make_generator(46), **kw), x, n_steps=10)
    from_state = S.run_chain(kernel(step, gaussian_2d, eb.make_generator(46), **kw),
                             S.init_state(gaussian_2d, x, with_grad=name != "mh"), n_steps=10)
    assert torch.equal(from_tensor.trajectory, from_state.trajectory)
    assert torch.equal(from_tensor.energies, from_state.energies)
    assert torch.equal(from_tensor.accept_rate, from_state.accept_rate)


def test_a_hand_written_langevin_step_reproduces_the_package():
    def my_langevin_step(energy, x, step_size, generator):
        g = eb.energies.grad_energy(energy, x)
        xi = torch.randn(x.shape, generator=generator, device=x.device)
        return x - step_size * g + (2 * step_size) ** 0.5 * xi

    x0 = torch.randn(256, 2, generator=eb.make_generator(16))
    ours = my_langevin_step(gaussian_2d, x0, 0.01, eb.make_generator(17))
    theirs, _ = S.langevin_step(gaussian_2d, S.init_state(gaussian_2d, x0), step_size=0.01,
                                generator=eb.make_generator(17))
    torch.testing.assert_close(ours, theirs.x)


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
    theirs, _ = S.mala_step(gaussian_2d, S.init_state(gaussian_2d, x0), step_size=0.8,
                            generator=eb.make_generator(19))
    torch.testing.assert_close(ours, theirs.x)


def test_a_hand_written_mh_step_reproduces_the_package():
    # the sampling chapter's check: randn(x.shape), then rand(n)
    def my_mh_step(energy, x, sigma, generator):
        y = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        alpha = torch.exp(torch.clamp(energy(x) - energy(y), max=0))
        accept = torch.rand(x.shape[0], generator=generator, dtype=x.dtype) < alpha
        return torch.where(accept[:, None], y, x)

    x0 = torch.randn(256, 2, generator=eb.make_generator(47), dtype=torch.float64)
    ours = my_mh_step(gaussian_2d, x0, 0.5, eb.make_generator(48))
    theirs, _ = S.mh_step(gaussian_2d, S.init_state(gaussian_2d, x0, with_grad=False), proposal_std=0.5,
                          generator=eb.make_generator(48))
    torch.testing.assert_close(ours, theirs.x)


def test_a_hand_written_hmc_step_reproduces_the_package():
    # momentum randn(x.shape), leapfrog, then rand(n)
    def my_hmc_step(energy, x, eps, n_leapfrog, generator):
        p0 = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        e, g = eb.energies.value_and_grad(energy, x)
        y, p = x, p0 - 0.5 * eps * g
        for i in range(n_leapfrog):
            y = y + eps * p
            e_y, g_y = eb.energies.value_and_grad(energy, y)
            p = p - (eps if i < n_leapfrog - 1 else 0.5 * eps) * g_y
        log_alpha = e - e_y + 0.5 * (p0.square().sum(1) - p.square().sum(1))
        accept = torch.rand(x.shape[0], generator=generator, dtype=x.dtype) < log_alpha.clamp(max=0).exp()
        return torch.where(accept[:, None], y, x)

    x0 = torch.randn(256, 2, generator=eb.make_generator(49), dtype=torch.float64)
    ours = my_hmc_step(gaussian_2d, x0, 0.3, 4, eb.make_generator(50))
    theirs, _ = S.hmc_step(gaussian_2d, S.init_state(gaussian_2d, x0), step_size=0.3, n_leapfrog=4,
                           generator=eb.make_generator(50))
    torch.testing.assert_close(ours, theirs.x)


def test_the_differentiable_step_is_the_ula_step_with_a_graph():
    net = TinyNet()
    x = torch.randn(20, 2, generator=eb.make_generator(51), dtype=torch.float64)
    net.double()
    ours = S.differentiable_langevin_step(net, x, step_size=0.05, generator=eb.make_generator(52))
    theirs, _ = S.langevin_step(net, S.init_state(net, x), step_size=0.05, generator=eb.make_generator(52))
    torch.testing.assert_close(ours.detach(), theirs.x)
    assert ours.requires_grad
    grads = torch.autograd.grad(ours.sum(), list(net.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)      # x′ depends on θ through ∇ₓE_θ
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_temperature_is_the_energy_divided_by_t(name):
    step, kw = STEPS[name]
    x = torch.randn(128, 2, generator=eb.make_generator(20), dtype=torch.float64)
    hot, _ = step(gaussian_2d, S.ChainState(x), temperature=2.5, generator=eb.make_generator(21), **kw)
    scaled, _ = step(lambda y: gaussian_2d(y) / 2.5, S.ChainState(x), generator=eb.make_generator(21), **kw)
    torch.testing.assert_close(hot.x, scaled.x)
    per_chain, _ = step(gaussian_2d, S.ChainState(x), temperature=torch.full((128,), 2.5, dtype=torch.float64),
                        generator=eb.make_generator(21), **kw)
    torch.testing.assert_close(per_chain.x, hot.x)


@pytest.mark.parametrize("name", ["mh", "ula", "mala", "hmc"])
def test_inputs_are_never_modified(name):
    step, kw = STEPS[name]
    x = torch.randn(64, 2, generator=eb.make_generator(22))
    state = S.init_state(gaussian_2d, x)
    copies = [t.clone() for t in (*state, x)]
    versions = [t._version for t in (*state, x)]
    step(gaussian_2d, state, generator=eb.make_generator(23), **kw)
    step(gaussian_2d, S.ChainState(x), generator=eb.make_generator(23), **kw)
    S.run_chain(kernel(step, gaussian_2d, eb.make_generator(23), **kw), state, n_steps=3)
    S.run_chain(kernel(step, gaussian_2d, eb.make_generator(23), **kw), x, n_steps=3)
    for t, c, v in zip((*state, x), copies, versions):
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


class TinyNet(torch.nn.Module):
    """A small learnable energy, (n, 2) -> (n,)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))
        gen = eb.make_generator(56)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))

    def forward(self, x):
        return self.net(x).squeeze(1)


def test_sampling_leaves_parameter_gradients_alone():
    net = TinyNet()
    x = torch.randn(64, 2, generator=eb.make_generator(26))
    S.run_chain(kernel(S.mala_step, net, eb.make_generator(27), step_size=0.01), x, n_steps=5)
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())


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
    assert torch.equal(eb.diagnostics.acceptance_rate(torch.tensor([[True, False], [True, True]])),
                       torch.tensor([1.0, 0.5]))


def test_a_step_that_changes_positions_returns_a_bare_state():
    # the digits chapter's pattern: a step, then a projection; the next step completes the state
    def clamped(state):
        state, info = S.noisy_gradient_step(half_square, state, step_size=0.5, noise_std=0.5,
                                            generator=gen)
        return S.ChainState(state.x.clamp(-1, 1)), info

    gen = eb.make_generator(53)
    result = S.run_chain(clamped, 3 * torch.ones(50, 2), n_steps=20, thin=10)
    assert result.trajectory.abs().max() <= 1
    assert torch.isnan(result.energies).all()                             # E unknown after the projection
    assert result.state.energy is None


def test_projected_langevin_evaluates_once_at_the_projected_point():
    # x′ = Π(x − η∇E(x) + √(2η)ξ), with E and ∇E of the state taken at Π's output: one gradient per step
    def box(x):
        return x.clamp(-1, 1)

    x0 = 3 * torch.randn(64, 2, generator=eb.make_generator(54))
    state = S.init_state(half_square, box(x0))
    xi = torch.randn(x0.shape, generator=eb.make_generator(55))
    by_hand = box(state.x - 0.5 * state.grad + 1.0 * xi)
    after, _ = S.langevin_step(half_square, state, step_size=0.5, generator=eb.make_generator(55), project=box)
    torch.testing.assert_close(after.x, by_hand)
    torch.testing.assert_close(after.energy, half_square(by_hand))
    torch.testing.assert_close(after.grad, by_hand)                       # ∇(½‖x‖²) = x at the projected point
    energy = CountingEnergy(half_square)
    step = functools.partial(S.noisy_gradient_step, energy, step_size=0.5, noise_std=0.5,
                             generator=eb.make_generator(56), project=box)
    result = S.run_chain(step, S.init_state(energy, box(x0)), n_steps=10)
    assert energy.with_grad == 1 + 10 and result.trajectory.abs().max() <= 1


# ----------------------------------------------------------------------- the noisy gradient step

def test_nominal_temperature():
    assert S.nominal_temperature(10, 0.005) == pytest.approx(1.25e-6, rel=1e-12)
    assert S.nominal_temperature(0.01, math.sqrt(0.02)) == pytest.approx(1.0)


def test_noisy_gradient_step_is_ula_at_its_nominal_temperature():
    x = torch.randn(64, 2, generator=eb.make_generator(31))
    ula, _ = S.langevin_step(gaussian_2d, S.ChainState(x), step_size=0.05, generator=eb.make_generator(32))
    noisy, _ = S.noisy_gradient_step(gaussian_2d, S.ChainState(x), step_size=0.05, noise_std=math.sqrt(0.1),
                                     generator=eb.make_generator(32))
    assert torch.equal(ula.x, noisy.x)
    # on E = x²/2, x' = (1 − η)x + σξ has variance σ²/(2η − η²) = T/(1 − η/2): a cold chain
    eta, sigma = 0.1, 0.05
    result = S.run_chain(kernel(S.noisy_gradient_step, half_square, eb.make_generator(33), step_size=eta,
                                noise_std=sigma), torch.zeros(50000, 1), n_steps=1, burn_in=200)
    want = sigma**2 / (2 * eta - eta**2)
    assert abs(result.state.x.var() / want - 1) < 0.03
    assert want == pytest.approx(S.nominal_temperature(eta, sigma) / (1 - eta / 2))


@pytest.mark.parametrize("eta, sigma", [(1.0, 0.01), (0.02, 0.005), (0.2, 0.02), (0.3, 0.7)])
def test_noisy_gradient_step_is_the_recipe_same_draws(eta, sigma):
    # x′ = x − η∇E + σξ with one randn(x.shape) after the gradient, as the chapters write it
    x = torch.randn(64, 2, generator=eb.make_generator(54))
    g = eb.energies.grad_energy(gaussian_2d, x)
    want = x - eta * g + sigma * torch.randn(x.shape, generator=eb.make_generator(55))
    got, info = S.noisy_gradient_step(gaussian_2d, S.init_state(gaussian_2d, x), step_size=eta, noise_std=sigma,
                                      generator=eb.make_generator(55))
    torch.testing.assert_close(got.x, want)
    assert info.accepted.all()


# ----------------------------------------------------------------------- bad inputs

def wrong_shape_energy(x):
    return x.sum(1, keepdim=True)                                         # (n, 1) instead of (n,)


X = torch.zeros(4, 2)
GEN = eb.make_generator(0)
STATE = S.init_state(gaussian_2d, X)

BAD = [
    ("step size zero", lambda: S.mala_step(gaussian_2d, STATE, step_size=0.0, generator=GEN), ValueError, "step_size"),
    ("negative step size", lambda: S.langevin_step(gaussian_2d, STATE, step_size=-0.1, generator=GEN), ValueError, "step_size"),
    ("NaN proposal std", lambda: S.mh_step(gaussian_2d, STATE, proposal_std=math.nan, generator=GEN), ValueError, "proposal_std"),
    ("MH given a step size", lambda: S.mh_step(gaussian_2d, STATE, step_size=0.5, generator=GEN), TypeError, "step_size"),
    ("step sizes of wrong shape", lambda: S.mala_step(gaussian_2d, STATE, step_size=torch.ones(3), generator=GEN), ValueError, "one value per chain"),
    ("a negative per-chain step size", lambda: S.mala_step(gaussian_2d, STATE, step_size=-torch.ones(4), generator=GEN), ValueError, "positive"),
    ("step size given as a bool", lambda: S.hmc_step(gaussian_2d, STATE, step_size=True, n_leapfrog=2, generator=GEN), ValueError, "step_size"),
    ("temperature zero", lambda: S.mala_step(gaussian_2d, STATE, step_size=0.1, temperature=0.0, generator=GEN), ValueError, "temperature"),
    ("no leapfrog step", lambda: S.hmc_step(gaussian_2d, STATE, step_size=0.1, n_leapfrog=0, generator=GEN), ValueError, "n_leapfrog"),
    ("a tensor instead of a state", lambda: S.mala_step(gaussian_2d, X, step_size=0.1, generator=GEN), TypeError, "init_state"),
    ("energy of wrong shape", lambda: S.init_state(wrong_shape_energy, X), ValueError, "squeeze"),
    ("energy of wrong shape, in a step", lambda: S.mala_step(wrong_shape_energy, S.ChainState(X), step_size=0.1, generator=GEN), ValueError, "squeeze"),
    ("positions without batch dimension", lambda: S.init_state(gaussian_2d, torch.zeros(2)), ValueError, "x[None]"),
    ("an empty batch", lambda: S.init_state(gaussian_2d, torch.zeros(0, 2)), ValueError, "empty"),
    ("an empty batch, in run_chain", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), torch.zeros(0, 2), n_steps=1), ValueError, "empty"),
    ("integer positions", lambda: S.init_state(gaussian_2d, torch.zeros(4, 2, dtype=torch.long)), TypeError, "float"),
    ("integer positions, in run_chain", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), torch.zeros(4, 2, dtype=torch.long), n_steps=1), TypeError, "float"),
    ("gradient of wrong shape", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), STATE._replace(grad=torch.zeros(4, 3)), n_steps=1), ValueError, "init_state"),
    ("energies of wrong shape", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), STATE._replace(energy=torch.zeros(3)), n_steps=1), ValueError, "init_state"),
    ("start where the energy is NaN", lambda: S.init_state(nan_beyond_half, torch.ones(4, 2)), ValueError, "finite"),
    ("start where the energy is NaN, in run_chain", lambda: S.run_chain(kernel(S.mala_step, nan_beyond_half, GEN, step_size=0.1), torch.ones(4, 2), n_steps=1), ValueError, "finite"),
    ("not a generator", lambda: S.mala_step(gaussian_2d, STATE, step_size=0.1, generator=0), TypeError, "make_generator"),
    ("generator on another device", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), torch.zeros(4, 2, device="meta"), n_steps=1), ValueError, "make_generator"),
    ("no noise", lambda: S.noisy_gradient_step(gaussian_2d, STATE, step_size=0.1, noise_std=0.0, generator=GEN), ValueError, "noise_std"),
    ("noisy step without a step size", lambda: S.noisy_gradient_step(gaussian_2d, STATE, step_size=0.0, noise_std=0.1, generator=GEN), ValueError, "step_size"),
    ("nominal temperature of a negative step", lambda: S.nominal_temperature(-1.0, 0.1), ValueError, "step_size"),
    ("differentiable step from a 1-D tensor", lambda: S.differentiable_langevin_step(gaussian_2d, torch.zeros(2), step_size=0.1, generator=GEN), ValueError, "x[None]"),
    ("differentiable step of size zero", lambda: S.differentiable_langevin_step(gaussian_2d, X, step_size=0.0, generator=GEN), ValueError, "step_size"),
    ("zero steps", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), X, n_steps=0), ValueError, "n_steps"),
    ("a float number of steps", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), X, n_steps=2.0), ValueError, "n_steps"),
    ("thinning past the end", lambda: S.run_chain(kernel(S.mala_step, gaussian_2d, GEN, step_size=0.1), X, n_steps=3, thin=5), ValueError, "thin"),
    ("a step that is not callable", lambda: S.run_chain(S.mala_step(gaussian_2d, STATE, step_size=0.1, generator=GEN), X, n_steps=2), TypeError, "functools.partial"),
    ("a step that returns tensors", lambda: S.run_chain(lambda s: (s.x, None), X, n_steps=2), TypeError, "ChainState"),
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
