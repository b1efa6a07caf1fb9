"""Grid normalization against closed forms, convergence, and the KL estimator against its floor."""

import functools
import math

import pytest
import torch

import ebmbook as eb


def gaussian_energy(cov, mean=None):
    mean = torch.zeros(cov.shape[0]) if mean is None else mean
    return lambda x: eb.energies.gaussian(x, mean, covariance=cov)


def test_log_z_of_1d_gaussian():
    cov = torch.tensor([[0.7]])
    grid = eb.grid.make_grid(-8, 8, 512, dim=1, dtype=torch.float64)
    got = eb.grid.log_partition(gaussian_energy(cov), grid)
    assert abs(got - eb.energies.gaussian_log_partition(covariance=cov)) < 1e-10


def test_log_z_of_2d_gaussian_within_1e4_at_256_squared():
    """The foundation's headline number, in the default float32 grid."""
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    grid = eb.grid.make_grid(-5, 5, 256, dim=2)
    got = eb.grid.log_partition(gaussian_energy(cov, torch.tensor([0.3, -0.2])), grid)
    assert abs(got - eb.energies.gaussian_log_partition(covariance=cov)) < 1e-4


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_log_z_at_temperature(temperature):
    cov = torch.tensor([[0.5, 0.1], [0.1, 0.4]])
    grid = eb.grid.make_grid(-9, 9, 300, dim=2, dtype=torch.float64)  # the box holds 7σ at T = 2.5
    got = eb.grid.log_partition(gaussian_energy(cov), grid, temperature=temperature)
    want = eb.energies.gaussian_log_partition(covariance=cov, temperature=temperature)
    assert abs(got - want) < 1e-8


def test_log_z_converges_as_the_grid_refines():
    energy = lambda x: eb.energies.double_well(x, barrier=2.0)
    fine = eb.grid.log_partition(energy, eb.grid.make_grid(-4, 4, 4096, dim=1, dtype=torch.float64))
    errors = [abs(eb.grid.log_partition(energy, eb.grid.make_grid(-4, 4, n, dim=1, dtype=torch.float64)) - fine).item()
              for n in (8, 16, 32, 64)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-6


def test_density_integrates_to_one_and_masses_sum_to_one(box2d):
    p = eb.grid.density(eb.energies.banana, box2d)
    assert p.shape == (256, 256)
    assert abs(p.sum().item() * box2d.cell_volume - 1) < 1e-10
    m = eb.grid.bin_masses(eb.energies.banana, eb.grid.make_grid(-5, 5, 20, dim=2), refine=3)
    assert m.shape == (20, 20) and abs(m.sum().item() - 1) < 1e-6


def test_bin_masses_of_uniform_density_are_equal():
    grid = eb.grid.make_grid(-1, 1, 10, dim=1)
    m = eb.grid.bin_masses(lambda x: torch.zeros(x.shape[0]), grid)
    torch.testing.assert_close(m, torch.full((10,), 0.1, dtype=m.dtype))


def test_entropy_of_gaussian_matches_closed_form():
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    grid = eb.grid.make_grid(-7, 7, 300, dim=2, dtype=torch.float64)
    h = eb.grid.entropy(gaussian_energy(cov), grid)
    want = 0.5 * math.log(torch.det(2 * math.pi * math.e * cov.double()).item())
    assert abs(h.item() - want) < 1e-6


def test_two_moons_entropy_matches_the_reference(box2d):
    """scikit-learn's two moons with noise 0.1 has entropy 1.0076 nats (converged quadrature)."""
    assert abs(eb.grid.entropy(eb.energies.two_moons, box2d).item() - 1.0076) < 5e-4


def test_eight_gaussians_entropy_matches_the_reference(box2d):
    assert abs(eb.grid.entropy(eb.energies.eight_gaussians, box2d).item() - 2.832) < 3e-3


def test_nll_of_gaussian_data_is_exact(gen):
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    x = torch.randn(100, 2, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    grid = eb.grid.make_grid(-8, 8, 256, dim=2, dtype=torch.float64)
    got = eb.grid.nll(gaussian_energy(cov), x, grid)
    dist = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    assert abs(got + dist.log_prob(x).mean()) < 1e-8


def test_nll_is_differentiable_in_parameters(gen):
    net = eb.nets.MLPEnergy(2, hidden=(8,))
    x = eb.data.two_moons(64, generator=gen)
    eb.grid.nll(net, x, eb.grid.make_grid(-3, 3, 32, dim=2)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_grad_log_z_identity(gen):
    """∇θ log Z = −E_p[∇θ E] for a learned energy, both sides on the same grid."""
    torch.manual_seed(0)  # parameters of the test network only
    net = eb.nets.MLPEnergy(2, hidden=(16,)).double()
    grid = eb.grid.make_grid(-3, 3, 64, dim=2, dtype=torch.float64)
    lhs = torch.autograd.grad(eb.grid.log_partition(net, grid), list(net.parameters()))
    w = eb.grid.density(net, grid).reshape(-1).detach() * grid.cell_volume
    rhs = torch.autograd.grad(-(w * net(grid.points)).sum(), list(net.parameters()))
    for a, b in zip(lhs, rhs):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["eight_gaussians", "two_moons", "banana"])
def test_data_samplers_match_their_energy(name, bins2d):
    """Exact-grid KL of 20,000 data points is within noise of the floor of exact samples."""
    energy = getattr(eb.energies, name)
    x = getattr(eb.data, name)(20_000, generator=eb.make_generator(7))
    kl = eb.grid.kl_from_samples(x, energy, bins2d)
    floor = eb.grid.kl_floor(energy, bins2d, 20_000, generator=eb.make_generator(8), n_repeats=20)
    # the floor's own spread at this size is about 0.001; a wrong sampler misses by far more
    assert kl < floor + 0.005, f"{name}: KL {kl:.4f} vs floor {floor:.4f}"


def test_kl_detects_a_wrong_distribution(bins2d):
    x = eb.data.two_moons(20_000, generator=eb.make_generator(7), noise=0.15)
    kl = eb.grid.kl_from_samples(x, eb.energies.two_moons, bins2d)
    floor = eb.grid.kl_floor(eb.energies.two_moons, bins2d, 20_000, generator=eb.make_generator(8))
    assert kl > floor + 0.05


def test_kl_test_passes_exact_samples_and_rejects_a_wider_distribution(bins2d):
    exact = eb.data.two_moons(20_000, generator=eb.make_generator(7))
    wider = eb.data.two_moons(20_000, generator=eb.make_generator(7), noise=0.12)
    passed = eb.grid.kl_test(exact, eb.energies.two_moons, bins2d, generator=eb.make_generator(8))
    failed = eb.grid.kl_test(wider, eb.energies.two_moons, bins2d, generator=eb.make_generator(8))
    assert passed and abs(passed.z) < 4 and passed.floor_std > 0
    assert not failed and failed.z > 4 and failed.kl > failed.floor


def test_kl_test_rejects_ula_and_passes_mala_at_the_same_step():
    # the sampling chapter's claim: MALA removes the bias that ULA has at the same step size
    # (at η = 0.1 ULA's modes are 1/√(1 − 0.4) ≈ 1.29 times too wide: z of 20–40 on these bins)
    ring, grid = eb.energies.eight_gaussians, eb.grid.make_grid(-6.0, 6.0, 48, dim=2)
    gen = eb.make_generator(11)
    x0 = 3.0 * torch.randn(3000, 2, generator=gen)
    verdicts = {}
    for name, step in [("MALA", eb.samplers.mala_step), ("ULA", eb.samplers.langevin_step)]:
        chain = eb.samplers.run_chain(functools.partial(step, ring, step_size=0.1, generator=gen), x0,
                                      n_steps=200, keep_trajectory=False)
        verdicts[name] = eb.grid.kl_test(chain.state.x, ring, grid, generator=gen)
    assert verdicts["MALA"] and not verdicts["ULA"], verdicts


def test_kl_is_infinite_for_samples_outside_the_box(bins2d):
    x = torch.tensor([[0.0, 0.0], [9.0, 0.0]])
    assert math.isinf(eb.grid.kl_from_samples(x, eb.energies.banana, bins2d))


def test_sample_exact_matches_its_grid(gen, bins2d):
    fine = eb.grid.make_grid(-5, 5, 200, dim=2)
    x = eb.grid.sample_exact(eb.energies.two_moons, fine, 20_000, generator=gen)
    kl = eb.grid.kl_from_samples(x, eb.energies.two_moons, bins2d)
    floor = eb.grid.kl_floor(eb.energies.two_moons, bins2d, 20_000, generator=gen)
    assert x.shape == (20_000, 2) and kl < floor + 0.005


def test_chunking_does_not_change_the_result():
    net = eb.nets.MLPEnergy(2, hidden=(16,))
    grid = eb.grid.make_grid(-3, 3, 64, dim=2)
    a = eb.grid.log_partition(net, grid, chunk_size=100)
    b = eb.grid.log_partition(net, grid, chunk_size=10_000)
    assert abs(a - b) < 1e-9


def test_a_512_squared_grid_of_an_mlp_runs_in_chunks():
    net = eb.nets.MLPEnergy(2)  # 2 → 128 → 128 → 1
    grid = eb.grid.make_grid(-4, 4, 512, dim=2)
    with torch.no_grad():
        assert torch.isfinite(eb.grid.log_partition(net, grid, chunk_size=16_384))


def test_grid_geometry():
    g = eb.grid.make_grid((-1, 0), (1, 4), (4, 8))
    assert g.shape == (4, 8) and g.dim == 2 and g.points.shape == (32, 2)
    assert g.widths == (0.5, 0.5) and g.cell_volume == 0.25
    torch.testing.assert_close(g.axes[0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_follows_dtype(dtype):
    g = eb.grid.make_grid(-1, 1, 4, dim=1, dtype=dtype)
    assert g.points.dtype == dtype
    assert eb.grid.density(lambda x: x[:, 0] ** 2, g).dtype == torch.float64


def test_kl_from_samples_pools_a_trajectory(bins2d):
    x = eb.data.banana(2000, generator=eb.make_generator(0))
    flat = eb.grid.kl_from_samples(x, eb.energies.banana, bins2d)
    assert flat == eb.grid.kl_from_samples(x.view(4, 500, 2), eb.energies.banana, bins2d)


def test_grid_memory_is_estimated_before_allocating():
    """A typo of 10⁵ cells per side is refused at once instead of allocating 75 GiB."""
    with pytest.raises(ValueError, match="GiB"):
        eb.grid.make_grid(-1, 1, 100_000, dim=2)
    with pytest.raises(ValueError, match="GiB"):
        eb.grid.bin_masses(eb.energies.banana, eb.grid.make_grid(-1, 1, 4000, dim=2), refine=16)
