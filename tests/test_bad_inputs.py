"""Bad input raises a clear error that names the fix: a student's misuse of every module.

Each case is (what, call, error type(s), text the message must contain). The errors are the
public types ValueError (wrong value), TypeError (wrong kind) and FloatingPointError
(divergence), or a public subclass; no private exception class ever reaches a user.
"""

import functools

import pytest
import torch

import ebmbook as eb

GRID = eb.grid.make_grid(-3, 3, 16, dim=2)
GRID_1D = eb.grid.make_grid(-3, 3, 16, dim=1)
BANANA = eb.energies.banana


def wrong_shape_energy(x):
    return x.sum(1, keepdim=True)  # (n, 1) instead of (n,)


def nan_energy(x):
    return torch.where(x[:, 0] > 0, torch.nan, 0.0) + x[:, 1] ** 2


class _MetaGenerator:
    """Stands in for a generator on another device (this machine may have no GPU)."""

    device = torch.device("meta")


def gen():
    return eb.make_generator(0)


def x2(n=8, dtype=torch.float32):
    return torch.randn(n, 2, generator=eb.make_generator(1)).to(dtype)


def state():
    return eb.samplers.init_state(BANANA, x2())


def net():
    return eb.nets.MLPEnergy(2, hidden=(8,), generator=gen())


def cond_net():
    return eb.nets.ConditionalMLPEnergy(2, 3, hidden=(8,), generator=gen())


def noise_net():
    return eb.nets.NoiseConditionalEnergy(2, hidden=(8,), generator=gen())


def mala(step_size=0.01, energy=BANANA):
    return functools.partial(eb.samplers.mala_step, energy, step_size=step_size, generator=gen())


def train(x, **kw):
    model = net()
    args = dict(step=mala(energy=model), n_steps=1, n_iters=1, batch_size=4, generator=gen(),
                optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))
    return eb.training.train(model, x, **{**args, **kw})


def buffer(**kw):
    return eb.buffers.ReplayBuffer(16, (2,), low=-3.0, high=3.0, **kw)


EMPTY, INTS = torch.zeros(0, 2), torch.zeros(4, 2, dtype=torch.long)

CASES = [
    # energies: the contract and the analytic energies
    ("energy of wrong shape", lambda: eb.grid.log_partition(wrong_shape_energy, GRID), ValueError, "squeeze"),
    ("energy returns NaN", lambda: eb.grid.log_partition(nan_energy, GRID), ValueError, "non-finite"),
    ("energy returns a list", lambda: eb.energies.evaluate(lambda x: [0.0] * len(x), x2()), ValueError, "return shape"),
    ("points without batch dimension", lambda: eb.energies.evaluate(BANANA, torch.zeros(2)), ValueError, "x[None]"),
    ("points of wrong dimension", lambda: eb.energies.banana(torch.zeros(4, 3)), ValueError, "(n, 2)"),
    ("empty batch to evaluate", lambda: eb.energies.evaluate(BANANA, EMPTY), ValueError, "empty batch"),
    ("empty batch to value_and_grad", lambda: eb.energies.value_and_grad(BANANA, EMPTY), ValueError, "empty batch"),
    ("integer points to an energy", lambda: eb.energies.banana(INTS), TypeError, ".float()"),
    ("integer points to grad_energy", lambda: eb.energies.grad_energy(eb.energies.two_moons, INTS), TypeError, "floating point"),
    ("a list instead of a tensor", lambda: eb.energies.eight_gaussians([[0.0, 0.0]]), TypeError, "torch.Tensor"),
    ("1-D points to a 2-D toy", lambda: eb.energies.eight_gaussians(torch.zeros(2)), ValueError, "x[None]"),
    ("temperature zero", lambda: eb.grid.log_partition(BANANA, GRID, temperature=0.0), ValueError, "positive"),
    ("negative temperature", lambda: eb.energies.gaussian_log_partition(precision=torch.eye(2), temperature=-1.0), ValueError, "positive"),
    ("temperature given as bool", lambda: eb.energies.gaussian_log_partition(precision=torch.eye(2), temperature=True), ValueError, "temperature"),
    ("both covariance and precision", lambda: eb.energies.gaussian(torch.zeros(2, 2), torch.zeros(2), covariance=torch.eye(2), precision=torch.eye(2)), ValueError, "exactly one"),
    ("a mean of shape (1, d)", lambda: eb.energies.gaussian(torch.zeros(2, 2), torch.zeros(1, 2), covariance=torch.eye(2)), ValueError, "mean must have shape (d,)"),
    ("a non-square covariance", lambda: eb.energies.gaussian(torch.zeros(2, 2), torch.zeros(2), covariance=torch.ones(2, 3)), ValueError, "square"),
    ("a covariance that is not positive definite", lambda: eb.energies.gaussian_log_partition(covariance=-torch.eye(2)), ValueError, "positive definite"),
    ("mixture weights not summing to one", lambda: eb.energies.gaussian_mixture(torch.zeros(3, 2), torch.zeros(2, 2), 1.0, torch.tensor([0.5, 0.6])), ValueError, "sum to 1"),
    ("a negative mixture std", lambda: eb.energies.gaussian_mixture(torch.zeros(3, 2), torch.zeros(2, 2), -1.0), ValueError, "stds must be positive"),
    ("a negative double-well barrier", lambda: eb.energies.double_well(torch.zeros(3, 1), barrier=-1.0), ValueError, "barrier"),
    ("two moons with NaN noise", lambda: eb.energies.two_moons(x2(), noise=float("nan")), ValueError, "noise"),
    # nets
    ("a net of input dimension zero", lambda: eb.nets.MLPEnergy(0), ValueError, "dim must be a positive int"),
    ("a net with a float dimension", lambda: eb.nets.MLPEnergy(2.0), ValueError, "dim"),
    ("a hidden layer of width zero", lambda: eb.nets.MLPEnergy(2, hidden=(8, 0)), ValueError, "hidden width"),
    ("an unknown activation", lambda: eb.nets.MLPEnergy(2, activation="tanh"), ValueError, "silu"),
    ("a net seeded with an int", lambda: eb.nets.MLPEnergy(2, generator=0), TypeError, "make_generator"),
    ("points of the wrong dimension to a net", lambda: net()(torch.zeros(4, 3)), ValueError, "(n, 2)"),
    ("integer points to a net", lambda: net()(INTS), TypeError, ".float()"),
    ("an empty batch to a net", lambda: net()(EMPTY), ValueError, "empty batch"),
    ("flat digits to the conv net", lambda: eb.nets.ConvEnergy(4, generator=gen())(torch.zeros(3, 64)), ValueError, "view(-1, 1, 8, 8)"),
    ("a conv net with True channels", lambda: eb.nets.ConvEnergy(True), ValueError, "channels"),
    ("a conditional net with cond_dim zero", lambda: eb.nets.ConditionalMLPEnergy(2, 0), ValueError, "cond_dim must be a positive int"),
    ("a condition of the wrong width", lambda: cond_net()(x2(), torch.zeros(8, 2)), ValueError, "shape (8, 3) or (3,)"),
    ("one condition per row, but too few rows", lambda: cond_net()(x2(), torch.zeros(4, 3)), ValueError, "shape (8, 3) or (3,)"),
    ("a batch of conditions to given()", lambda: cond_net().given(torch.zeros(8, 3)), ValueError, "one condition of shape (3,)"),
    ("a noise level of zero", lambda: noise_net()(x2(), 0.0), ValueError, "sigma must be a positive number"),
    ("a negative noise level among the levels", lambda: noise_net()(x2(), torch.linspace(-0.1, 1.0, 8)), ValueError, "of positive levels"),
    ("a NaN noise level", lambda: noise_net()(x2(), float("nan")), ValueError, "sigma must be a positive number"),
    ("noise levels of the wrong shape", lambda: noise_net()(x2(), torch.full((3,), 0.5)), ValueError, "tensor of shape (8,)"),
    ("a noise-conditional energy at level zero", lambda: noise_net().at(0.0), ValueError, "the noise level must be positive"),
    # data and device
    ("not a generator", lambda: eb.data.two_moons(10, generator=0), TypeError, "make_generator"),
    ("non-positive sample count", lambda: eb.data.banana(0, generator=gen()), ValueError, "positive int"),
    ("a sample count given as bool", lambda: eb.data.eight_gaussians(True, generator=gen()), ValueError, "positive int"),
    ("a fractional sample count", lambda: eb.data.two_moons(2.5, generator=gen()), ValueError, "positive int"),
    ("toy data of integer dtype", lambda: eb.data.two_moons(10, generator=gen(), dtype=torch.int64), TypeError, "floating-point"),
    ("no digits left for training", lambda: eb.data.digits_split(1797), ValueError, "n_test"),
    ("digits of integer dtype", lambda: eb.data.digits_split(dtype=torch.uint8), TypeError, "floating-point"),
    ("negative seed", lambda: eb.make_generator(-1), ValueError, "non-negative"),
    ("a fractional seed", lambda: eb.make_generator(1.5), ValueError, "seed"),
    # grid
    ("grid size zero", lambda: eb.grid.make_grid(-1, 1, 0, dim=2), ValueError, "n must be"),
    ("grid size given as bool", lambda: eb.grid.make_grid(-1, 1, True, dim=1), ValueError, "n must be"),
    ("grid box reversed", lambda: eb.grid.make_grid(1, -1, 8, dim=1), ValueError, "low < high"),
    ("grid box with NaN", lambda: eb.grid.make_grid(float("nan"), 1, 8, dim=1), ValueError, "low < high"),
    ("grid corners of the wrong length", lambda: eb.grid.make_grid((-1, -1, -1), 1, 8, dim=2), ValueError, "entries"),
    ("grid in 3-D", lambda: eb.grid.make_grid(-1, 1, 8, dim=3), ValueError, "importance sampling"),
    ("grid without dimension", lambda: eb.grid.make_grid(-1, 1, 8), ValueError, "dim=1 or dim=2"),
    ("a grid too large for memory", lambda: eb.grid.make_grid(-1, 1, 100_000, dim=2), ValueError, "GiB"),
    ("a grid of integer dtype", lambda: eb.grid.make_grid(-1, 1, 8, dim=1, dtype=torch.int32), TypeError, "floating-point"),
    ("chunk size zero", lambda: eb.grid.log_partition(BANANA, GRID, chunk_size=0), ValueError, "chunk_size"),
    ("refine zero", lambda: eb.grid.bin_masses(BANANA, GRID, refine=0), ValueError, "refine"),
    ("temperature as a string", lambda: eb.grid.density(BANANA, GRID, temperature="1"), ValueError, "temperature"),
    ("data outside the box for the NLL", lambda: eb.grid.nll(BANANA, torch.tensor([[9.0, 0.0]]), GRID), ValueError, "enlarge the box"),
    ("an empty batch for the NLL", lambda: eb.grid.nll(BANANA, EMPTY, GRID), ValueError, "empty batch"),
    ("integer data for the NLL", lambda: eb.grid.nll(BANANA, INTS, GRID), TypeError, "floating point"),
    ("samples of wrong dimension for a KL", lambda: eb.grid.kl_from_samples(torch.zeros(5, 3), BANANA, GRID), ValueError, "(n, 2)"),
    ("a trajectory of wrong dimension for a KL", lambda: eb.grid.kl_from_samples(torch.zeros(4, 5, 3), BANANA, GRID), ValueError, "(n, 2)"),
    ("no samples for a KL", lambda: eb.grid.kl_from_samples(EMPTY, BANANA, GRID), ValueError, "empty batch"),
    ("integer samples for a KL", lambda: eb.grid.kl_from_samples(INTS, BANANA, GRID), TypeError, "floating point"),
    ("generator on another device", lambda: eb.grid.kl_floor(BANANA, GRID, 10, generator=_MetaGenerator()), (TypeError, ValueError), "make_generator"),
    ("a KL floor of zero samples", lambda: eb.grid.kl_floor(BANANA, GRID, 0, generator=gen()), ValueError, "n_samples"),
    ("a KL floor of 10¹² samples", lambda: eb.grid.kl_floor(BANANA, GRID, 10**12, generator=gen()), ValueError, "GiB"),
    ("a KL floor of zero repeats", lambda: eb.grid.kl_floor(BANANA, GRID, 10, generator=gen(), n_repeats=0), ValueError, "n_repeats"),
    ("exact samples without a generator", lambda: eb.grid.sample_exact(BANANA, GRID, 10, generator=None), TypeError, "make_generator"),
    ("zero exact samples", lambda: eb.grid.sample_exact(BANANA, GRID, 0, generator=gen()), ValueError, "n must be"),
    # plotting
    ("3-D points to plot_samples", lambda: eb.plotting.plot_samples(torch.zeros(5, 3)), ValueError, "(n, 2)"),
    ("a 1-D grid to plot_density_2d", lambda: eb.plotting.plot_density_2d(BANANA, grid=GRID_1D), ValueError, "2-D grid"),
    ("colour images to plot_image_grid", lambda: eb.plotting.plot_image_grid(torch.zeros(4, 3, 8, 8)), ValueError, "shape"),
    ("zero columns of images", lambda: eb.plotting.plot_image_grid(torch.zeros(4, 1, 8, 8), n_cols=0), ValueError, "n_cols"),
    ("a slider without alt text", lambda: eb.plotting.frame_slider([b"\x89PNG"], [1]), ValueError, "alt"),
    # samplers (steps take a ChainState; validation in init_state and run_chain)
    ("a tensor passed to a step as its state", lambda: eb.samplers.langevin_step(BANANA, x2(), step_size=0.1, generator=gen()), TypeError, "init_state"),
    ("an empty batch of chains", lambda: eb.samplers.init_state(BANANA, EMPTY), ValueError, "empty batch"),
    ("integer chain positions", lambda: eb.samplers.init_state(BANANA, INTS), TypeError, "floating point"),
    ("chains started where the energy is NaN", lambda: eb.samplers.init_state(nan_energy, torch.ones(3, 2)), ValueError, "finite"),
    ("zero steps", lambda: eb.samplers.run_chain(mala(), x2(), n_steps=0), ValueError, "n_steps"),
    ("a negative step size", lambda: eb.samplers.run_chain(mala(step_size=-0.1), x2(), n_steps=2), ValueError, "step_size"),
    ("a NaN step size", lambda: eb.samplers.run_chain(mala(step_size=float("nan")), x2(), n_steps=2), ValueError, "step_size"),
    ("MH given step_size instead of proposal_std", lambda: eb.samplers.mh_step(BANANA, state(), step_size=0.5, generator=gen()), TypeError, "step_size"),
    ("a zero MH proposal scale", lambda: eb.samplers.run_chain(functools.partial(eb.samplers.mh_step, BANANA, proposal_std=0.0, generator=gen()), x2(), n_steps=2), ValueError, "proposal_std"),
    ("HMC without leapfrog steps", lambda: eb.samplers.run_chain(functools.partial(eb.samplers.hmc_step, BANANA, step_size=0.1, n_leapfrog=0, generator=gen()), x2(), n_steps=2), ValueError, "n_leapfrog"),
    ("a sampler generator on another device", lambda: eb.samplers.run_chain(functools.partial(eb.samplers.mala_step, BANANA, step_size=0.1, generator=_MetaGenerator()), x2(), n_steps=2), (TypeError, ValueError), "make_generator"),
    ("zero noise in the noisy gradient step", lambda: eb.samplers.run_chain(functools.partial(eb.samplers.noisy_gradient_step, BANANA, step_size=0.1, noise_std=0.0, generator=gen()), x2(), n_steps=2), ValueError, "noise_std"),
    ("integer points to the differentiable step", lambda: eb.samplers.differentiable_langevin_step(BANANA, INTS, step_size=0.1, generator=gen()), TypeError, "floating point"),
    # tempering and diagnostics
    ("annealing without temperatures", lambda: eb.tempering.annealed_langevin(BANANA, state(), temperatures=[], steps_per_level=2, step=eb.samplers.mala_step, step_size=0.1, generator=gen()), ValueError, "temperatures"),
    ("one energy per level, but too few", lambda: eb.tempering.annealed_langevin([BANANA], state(), temperatures=[2.0, 1.0], steps_per_level=2, step=eb.samplers.mala_step, step_size=0.1, generator=gen()), ValueError, "temperatures"),
    ("a tempering ladder that decreases", lambda: eb.tempering.tempering_step(BANANA, state(), temperatures=[2.0, 1.0], step_size=0.1, generator=gen()), ValueError, "increase"),
    ("an empty acceptance record", lambda: eb.diagnostics.acceptance_rate([]), ValueError, "accepted"),
    ("an integer trace for the ESS", lambda: eb.diagnostics.effective_sample_size(torch.zeros(10, 4, dtype=torch.long)), TypeError, "floating point"),
    ("a trace of one step for split-R̂", lambda: eb.diagnostics.split_rhat(torch.zeros(1, 4)), ValueError, "trace"),
    ("mode means of the wrong dimension", lambda: eb.diagnostics.mode_occupancy(x2(), torch.zeros(8, 3)), ValueError, "means"),
    # buffers, losses, training
    ("a buffer of capacity zero", lambda: eb.buffers.ReplayBuffer(0, (2,)), ValueError, "capacity"),
    ("a reinit fraction above one", lambda: buffer(reinit_fraction=1.5), ValueError, "reinit_fraction"),
    ("pushing points of another shape", lambda: buffer().push(torch.zeros(4, 3)), ValueError, "shape"),
    ("sampling zero points from a buffer", lambda: buffer().sample(0, generator=gen()), ValueError, "n"),
    ("a CD loss with no model samples", lambda: eb.losses.contrastive_divergence(BANANA, x2(), EMPTY), ValueError, "empty batch"),
    ("a CD loss on integer data", lambda: eb.losses.contrastive_divergence(BANANA, INTS, x2()), TypeError, "floating point"),
    ("a negative energy penalty", lambda: eb.losses.contrastive_divergence(BANANA, x2(), x2(), alpha=-1.0), ValueError, "alpha"),
    ("a differentiable step with step size zero", lambda: eb.samplers.differentiable_langevin_step(net(), x2(), step_size=0.0, generator=gen()), ValueError, "step_size"),
    ("a KL term on points without a graph", lambda: eb.losses.kl_term(net(), x2()), ValueError, "differentiable_langevin_step"),
    ("a negative entropy weight", lambda: eb.losses.kl_term(net(), eb.samplers.differentiable_langevin_step(net(), x2(), step_size=0.1, generator=gen()), entropy_weight=-1.0), ValueError, "entropy_weight"),
    ("training on an empty data set", lambda: train(EMPTY), ValueError, "empty batch"),
    ("training with batch size zero", lambda: train(x2(), batch_size=0), ValueError, "batch_size"),
    ("training for True iterations", lambda: train(x2(), n_iters=True), ValueError, "n_iters"),
    ("the removed string mode init='buffer'", lambda: train(x2(), init="buffer"), TypeError, "init"),
]


@pytest.mark.parametrize("what, call, error, fix", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(what, call, error, fix):
    with pytest.raises(error) as info:
        call()
    assert fix in str(info.value), f"{what}: message {str(info.value)!r} should mention {fix!r}"
    assert not type(info.value).__name__.startswith("_"), f"{what}: raised the private {type(info.value).__name__}"


def test_enough_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 60


def test_unknown_device_override(monkeypatch):
    monkeypatch.setenv("EBMBOOK_DEVICE", "cuda")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present, so the override is valid")
    with pytest.raises(RuntimeError, match="unset it or use cpu"):
        eb.pick_device()


def test_a_device_override_that_is_no_device(monkeypatch):
    monkeypatch.setenv("EBMBOOK_DEVICE", "gpu0")
    with pytest.raises(RuntimeError, match="not a device name"):
        eb.pick_device()


def test_float64_grid_with_float32_net_works():
    """The dtype rule of ebmbook.nets: a float32 net on a float64 grid computes in float32, returns float64."""
    model = net()
    grid = eb.grid.make_grid(-3, 3, 32, dim=2, dtype=torch.float64)
    log_z = eb.grid.log_partition(model, grid)
    assert torch.isfinite(log_z) and log_z.dtype == torch.float64
    x = eb.data.two_moons(16, generator=gen(), dtype=torch.float64)
    assert torch.isfinite(eb.grid.nll(model, x, grid))
    e, g = eb.energies.value_and_grad(model, x)
    assert e.dtype == g.dtype == torch.float64


def test_checkers_report_a_broken_student_function_instead_of_raising():
    for check in (eb.checks.check_boltzmann_probs, eb.checks.check_log_partition_1d, eb.checks.check_mh_accept,
                  eb.checks.check_langevin_step, eb.checks.check_cd_loss):
        result = check(lambda *args: None)
        assert not result and repr(result).startswith("✗")
