"""Energies: analytic gradients against autograd, normalization, and the contract."""

import math

import pytest
import torch

import ebmbook as eb

TOYS = ["eight_gaussians", "two_moons", "banana"]


def test_gaussian_gradient_is_precision_times_offset(gen):
    mean = torch.tensor([0.5, -1.0, 2.0])
    a = torch.randn(3, 3, generator=gen)
    precision = a @ a.T + torch.eye(3)
    x = torch.randn(50, 3, generator=gen)
    e, g = eb.energies.value_and_grad(lambda z: eb.energies.gaussian(z, mean, precision=precision), x)
    torch.testing.assert_close(g, (x - mean) @ precision)
    torch.testing.assert_close(e, 0.5 * (((x - mean) @ precision) * (x - mean)).sum(1))


def test_gaussian_covariance_and_precision_agree(gen):
    cov = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    x = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    a = eb.energies.gaussian(x, torch.zeros(2), covariance=cov)
    b = eb.energies.gaussian(x, torch.zeros(2), precision=torch.linalg.inv(cov))
    torch.testing.assert_close(a, b)


def test_double_well_gradient_closed_form(gen):
    x = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    h, c = 2.0, 1.5
    g = eb.energies.grad_energy(lambda z: eb.energies.double_well(z, barrier=h, center=c), x)
    expected_0 = h * 2 * ((x[:, 0] / c) ** 2 - 1) * 2 * x[:, 0] / c**2
    torch.testing.assert_close(g[:, 0], expected_0)
    torch.testing.assert_close(g[:, 1], x[:, 1])


def test_banana_gradient_closed_form(gen):
    x = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    b, s, sd = 0.35, 1.75, 0.25
    r = x[:, 1] - b * x[:, 0] ** 2 + s
    g = eb.energies.grad_energy(eb.energies.banana, x)
    torch.testing.assert_close(g[:, 0], x[:, 0] - 2 * b * x[:, 0] * r / sd**2)
    torch.testing.assert_close(g[:, 1], r / sd**2)


def test_score_is_minus_gradient(gen):
    x = torch.randn(10, 2, generator=gen)
    torch.testing.assert_close(eb.energies.score(eb.energies.two_moons, x), -eb.energies.grad_energy(eb.energies.two_moons, x))


def test_mixture_with_one_component_is_a_normalized_gaussian(gen):
    x = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    e = eb.energies.gaussian_mixture(x, torch.tensor([[1.0, 2.0]]), 0.5)
    expected = eb.energies.gaussian(x, torch.tensor([1.0, 2.0]), covariance=0.25 * torch.eye(2))
    log_z = eb.energies.gaussian_log_partition(covariance=0.25 * torch.eye(2))
    torch.testing.assert_close(e, expected + log_z)


@pytest.mark.parametrize("name", TOYS)
def test_toy_energies_are_normalized(name, box2d):
    log_z = eb.grid.log_partition(getattr(eb.energies, name), box2d)
    assert abs(log_z.item()) < 1e-4, f"{name}: ∫exp(−E) = exp({log_z.item():.2e}), expected 1"


@pytest.mark.parametrize("name", TOYS)
def test_toy_gradients_are_finite_far_away(name):
    x = torch.tensor([[30.0, -40.0], [0.0, 0.0], [-8.0, 9.0]])
    e, g = eb.energies.value_and_grad(getattr(eb.energies, name), x)
    assert torch.isfinite(e).all() and torch.isfinite(g).all()


def test_grad_energy_leaves_parameter_grads_alone(gen):
    net = eb.nets.MLPEnergy(2, hidden=(8,))
    x = torch.randn(5, 2, generator=gen)
    eb.energies.grad_energy(net, x)
    assert all(p.grad is None for p in net.parameters())


def test_create_graph_allows_second_derivatives(gen):
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    g = eb.energies.grad_energy(lambda z: (z**3).sum(1), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(h, 6 * x.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_follow_input_dtype_and_device(dtype):
    x = torch.zeros(4, 2, dtype=dtype)
    for name in TOYS:
        e, g = eb.energies.value_and_grad(getattr(eb.energies, name), x)
        assert e.dtype == dtype and g.dtype == dtype and e.device == x.device


def test_inputs_are_not_modified(gen):
    x = torch.randn(8, 2, generator=gen)
    before = x.clone()
    for name in TOYS:
        eb.energies.value_and_grad(getattr(eb.energies, name), x)
    assert torch.equal(x, before) and not x.requires_grad


def test_mlp_energy_shape_and_spectral_norm(gen):
    net = eb.nets.MLPEnergy(3, hidden=(16, 16), spectral_norm=True)
    assert net(torch.randn(7, 3, generator=gen)).shape == (7,)


def test_mlp_energy_generator_makes_initialization_reproducible():
    make = lambda seed: eb.nets.MLPEnergy(2, hidden=(8, 8), generator=eb.make_generator(seed))
    a, b, c = make(3), make(3), make(4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    bound = 1 / math.sqrt(2)                       # nn.Linear's default law: U(±1/√fan_in)
    w = a.net[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound
    with pytest.raises(TypeError, match="make_generator"):
        eb.nets.MLPEnergy(2, generator=0)


def test_ensemble_members_are_the_mlps_the_generator_would_draw_one_by_one(gen):
    ens = eb.nets.MLPEnsemble(3, 2, (8, 8), generator=eb.make_generator(5), activation="relu")
    draws = eb.make_generator(5)
    singles = [eb.nets.MLPEnergy(2, (8, 8), generator=draws, activation="relu") for _ in range(3)]
    x = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    blocks = torch.cat([net(block) for net, block in zip(singles, x.split(4))])
    torch.testing.assert_close(ens(x), blocks, atol=1e-6, rtol=0)
    assert ens(x).dtype == torch.float64 and torch.equal(ens.member(2)(x), singles[2](x))
    # block s's gradient is member s's alone: chains of different members never interact
    g = eb.energies.grad_energy(ens, x)
    torch.testing.assert_close(g[4:8], eb.energies.grad_energy(singles[1], x[4:8]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="multiple of 3"):
        ens(x[:5])
    with pytest.raises(ValueError, match="int in 0 … 2"):
        ens.member(3)


def test_conditional_mlp_is_the_mlp_the_generator_would_draw_on_the_concatenation(gen):
    net = eb.nets.ConditionalMLPEnergy(2, 3, (8, 8), generator=eb.make_generator(5), activation="softplus")
    plain = eb.nets.MLPEnergy(5, (8, 8), generator=eb.make_generator(5), activation="softplus")
    x, c = torch.randn(6, 2, generator=gen), torch.randn(6, 3, generator=gen)
    assert torch.equal(net(x, c), plain(torch.cat([x, c], 1)))
    shared = torch.tensor([1.0, 0.0, -2.0])                            # one condition for every row
    assert torch.equal(net(x, shared), net(x, shared.repeat(6, 1)))
    assert torch.equal(net.given(shared)(x), net(x, shared))
    assert net(x.double(), c).dtype == torch.float64                   # the dtype rule, as for MLPEnergy
    # the gradient reaches every parameter, the points and the condition
    x, c = x.requires_grad_(True), c.requires_grad_(True)
    grads = torch.autograd.grad(net(x, c).sum(), [x, c, *net.parameters()])
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def _noise_inner(seed, dim=2):
    """The MLP on [x, log σ] that NoiseConditionalEnergy(dim, (8, 8)) draws from the same seed."""
    return eb.nets.MLPEnergy(dim + 1, (8, 8), generator=eb.make_generator(seed)).double()


def test_noise_conditional_energy_is_the_inner_network_over_sigma(gen):
    net = eb.nets.NoiseConditionalEnergy(2, (8, 8), generator=eb.make_generator(5)).double()
    inner = _noise_inner(5)
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 2.0, 10.0], dtype=torch.float64)
    g = inner(torch.cat([x, sigma.log()[:, None]], 1))
    torch.testing.assert_close(net(x, sigma) * sigma, g, rtol=1e-12, atol=1e-12)
    # a tensor of levels is the rows called one by one with numbers, and .at(s) is net(·, s)
    rows = torch.cat([net(x[i:i + 1], s.item()) for i, s in enumerate(sigma)])
    torch.testing.assert_close(net(x, sigma), rows, rtol=1e-12, atol=1e-12)
    assert torch.equal(net.at(0.5)(x), net(x, 0.5))
    torch.testing.assert_close(net(x, 0.5), net(x, torch.full((6,), 0.5, dtype=torch.float64)), rtol=0, atol=0)
    # a float32 net keeps the dtype rule
    small = eb.nets.NoiseConditionalEnergy(2, (8,), generator=eb.make_generator(5))
    assert small(x, sigma).dtype == torch.float64 and small(x.float(), 0.5).dtype == torch.float32


def test_noise_conditional_score_scales_as_one_over_sigma(gen):
    """σ ∇ₓE(x, σ) = ∇ₓg([x, log σ]): the network's own gradient, the score grows like 1/σ."""
    net = eb.nets.NoiseConditionalEnergy(2, (8, 8), generator=eb.make_generator(6)).double()
    inner = _noise_inner(6)
    x = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    for s in (0.01, 0.3, 4.0):
        xs = torch.cat([x, torch.full((5, 1), math.log(s), dtype=torch.float64)], 1)
        expected = eb.energies.grad_energy(inner, xs)[:, :2]
        torch.testing.assert_close(s * eb.energies.grad_energy(net.at(s), x), expected, rtol=1e-10, atol=1e-12)
    # per row, with the levels as a tensor, by autograd through forward(x, sigma)
    sigma = torch.tensor([0.01, 0.1, 1.0, 3.0, 30.0], dtype=torch.float64)
    z = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(z, sigma).sum(), z)
    expected = eb.energies.grad_energy(inner, torch.cat([x, sigma.log()[:, None]], 1))[:, :2]
    torch.testing.assert_close(sigma[:, None] * grad, expected, rtol=1e-10, atol=1e-12)


def test_noise_conditional_energy_trains_by_multilevel_dsm_and_samples_by_annealing(gen):
    """DSM over levels regresses ∇ₓg on the unit noise ε; net.at(σ) is one level of annealed MALA."""
    net = eb.nets.NoiseConditionalEnergy(2, (8, 8), generator=eb.make_generator(7))
    x = eb.data.two_moons(32, generator=gen)
    levels = torch.tensor([0.05, 0.3, 1.0])
    loss = eb.score_matching.denoising_score_matching(net, x, sigma=levels, generator=eb.make_generator(8))
    assert loss.dim() == 0 and torch.isfinite(loss)
    # every parameter but the output bias b: it adds b/σ, constant in x, which no score can see
    *weights, bias = net.parameters()
    grads = torch.autograd.grad(loss, [*weights, bias], allow_unused=True)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads[:-1]) and grads[-1] is None
    # the same draws (level indices, then ε): the loss is ½ mean ‖∇ₓg([x̃, log σ]) − ε‖²
    draws = eb.make_generator(8)
    s = levels[torch.randint(3, (32,), generator=draws)]
    eps = torch.randn(x.shape, generator=draws)
    inner = eb.nets.MLPEnergy(3, (8, 8), generator=eb.make_generator(7))
    g = eb.energies.grad_energy(inner, torch.cat([x + s[:, None] * eps, s.log()[:, None]], 1))[:, :2]
    torch.testing.assert_close(loss.detach(), 0.5 * (g - eps).square().sum(1).mean())

    sigmas = [1.0, 0.3, 0.05]
    x0 = torch.randn(10, 2, generator=gen)
    result = eb.tempering.annealed_langevin([net.at(s) for s in sigmas], x0, temperatures=[1.0] * 3,
                                            steps_per_level=3, step=eb.samplers.mala_step,
                                            step_size=[0.1 * s**2 for s in sigmas], generator=eb.make_generator(9))
    assert result.trajectory.shape == (3, 10, 2) and torch.isfinite(result.trajectory).all()
    assert result.state.x.shape == (10, 2) and torch.isfinite(result.state.x).all()
    with torch.no_grad():                                              # level k's energy is E(·, σ_k)
        for k, s in enumerate(sigmas):
            torch.testing.assert_close(result.energies[k], net(result.trajectory[k], s))


class _Recorder(eb.nets.MLPEnergy):
    """An MLP that records whether its parameters require gradients when it is called."""

    seen: list

    def forward(self, x):
        self.seen.append([p.requires_grad for p in self.parameters()])
        if getattr(self, "fail", False):
            raise RuntimeError("boom")
        return super().forward(x)


def _recorder():
    net = _Recorder(2, hidden=(8,), generator=eb.make_generator(0))
    net.seen = []
    return net


def test_value_and_grad_stops_tracking_parameters_during_the_call_only(gen):
    net = _recorder()
    x = torch.randn(5, 2, generator=gen)
    e, g = eb.energies.value_and_grad(net, x)
    assert net.seen == [[False] * 4]                                   # switched off inside
    assert all(p.requires_grad for p in net.parameters())              # and restored
    assert not e.requires_grad and not g.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(e, net(x))


def test_value_and_grad_restores_parameters_after_an_error(gen):
    net = _recorder()
    net.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        eb.energies.value_and_grad(net, torch.randn(5, 2, generator=gen))
    assert all(p.requires_grad for p in net.parameters())


def test_value_and_grad_keeps_frozen_parameters_frozen(gen):
    net = _recorder()
    net.net[0].weight.requires_grad_(False)
    eb.energies.value_and_grad(net, torch.randn(5, 2, generator=gen))
    assert [p.requires_grad for p in net.parameters()] == [False, True, True, True]


def test_create_graph_keeps_parameters_tracked(gen):
    """The KL term differentiates through a step: with create_graph the parameters stay in the graph."""
    net = _recorder()
    x = torch.randn(5, 2, generator=gen)
    e, g = eb.energies.value_and_grad(net, x, create_graph=True)
    assert net.seen == [[True] * 4]
    grads = torch.autograd.grad(e.sum() + g.square().sum(), list(net.parameters()))
    assert all(torch.isfinite(t).all() for t in grads)


@pytest.mark.parametrize("make, shape", [
    (lambda g: eb.nets.MLPEnergy(2, hidden=(8,), generator=g), (6, 2)),
    (lambda g: eb.nets.ConvEnergy(4, generator=g), (6, 1, 8, 8)),
])
def test_nets_follow_the_dtype_rule(make, shape):
    """A net computes in its parameters' dtype and returns energies in the input's dtype."""
    net = make(eb.make_generator(0))
    x = torch.randn(shape, generator=eb.make_generator(1), dtype=torch.float64)
    e = net(x)
    assert e.dtype == torch.float64 and next(net.parameters()).dtype == torch.float32
    torch.testing.assert_close(e, net(x.float()).double(), rtol=0, atol=0)
    e64 = net.double()(x)                                              # converted: computes in float64
    assert e64.dtype == torch.float64 and torch.allclose(e64, e, atol=1e-5)
    with pytest.raises(TypeError, match="floating point"):
        net(x.long())


def test_spectral_norm_uses_the_public_parametrization_and_leaves_the_global_state_alone():
    before = torch.get_rng_state()
    net = eb.nets.MLPEnergy(2, hidden=(16, 16), spectral_norm=True, generator=eb.make_generator(0))
    assert torch.equal(before, torch.get_rng_state())
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3 and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears)
    x = torch.randn(4, 2, generator=eb.make_generator(1))
    for _ in range(200):                                               # training mode: one iteration per call
        net(x)
    net.eval()
    for m in linears:                                                  # every weight has spectral norm 1
        assert abs(torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() - 1) < 1e-3


def test_spectral_norm_matches_pytorchs_power_iteration():
    """The same computation as torch.nn.utils.parametrizations.spectral_norm, from the same start vectors."""
    ours = eb.nets.MLPEnergy(3, hidden=(8,), spectral_norm=True, generator=eb.make_generator(0))
    layer = ours.net[0]
    theirs = torch.nn.Linear(3, 8)
    with torch.no_grad():
        theirs.weight.copy_(layer.parametrizations.weight.original)
    theirs = torch.nn.utils.parametrizations.spectral_norm(theirs, n_power_iterations=1)
    sn, mine = theirs.parametrizations.weight[0], layer.parametrizations.weight[0]
    with torch.no_grad():
        sn._u.copy_(mine._u)
        sn._v.copy_(mine._v)
    for _ in range(3):                                                 # training mode: both iterate once per call
        torch.testing.assert_close(layer.weight, theirs.weight, rtol=1e-6, atol=1e-7)
