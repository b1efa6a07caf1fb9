"""Training: a short run recovers a Gaussian's precision; divergence raises naming causes; bad input raises."""

import functools

import pytest
import torch
from torch import nn

import ebmbook as eb

COV = torch.tensor([[1.0, 0.5], [0.5, 2.0]])
PRECISION = torch.linalg.inv(COV)


class Quadratic(nn.Module):
    """E(x) = ½ xᵀ A x with A = L Lᵀ + 0.01 I, always positive definite."""

    def __init__(self):
        super().__init__()
        self.chol = nn.Parameter(torch.eye(2))

    @property
    def precision(self):
        low = torch.tril(self.chol)
        return low @ low.T + 0.01 * torch.eye(2)

    def forward(self, x):
        return 0.5 * ((x @ self.precision) * x).sum(1)


class Linear(nn.Module):
    """E(x) = w·x: not normalizable, so CD pushes w (and the energies) without end."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 0.0]))

    def forward(self, x):
        return x @ self.w


def gaussian_data(n, gen):
    return torch.randn(n, 2, generator=gen) @ torch.linalg.cholesky(COV).T


@pytest.mark.parametrize("init", ["persistent", "buffer"])
def test_short_training_recovers_a_gaussian_precision(init):
    gen = eb.make_generator(0)
    x = gaussian_data(4000, gen)
    net = Quadratic()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.3, generator=gen)
    buffer = eb.buffers.ReplayBuffer(2000, (2,), low=-3.0, high=3.0) if init == "buffer" else None
    hist = eb.training.train(net, x, step=step, n_steps=5, n_iters=400, batch_size=500, n_chains=500,
                             generator=gen, init=init, buffer=buffer, lr=0.02, progress=False)
    assert len(hist.loss) == 400 and hist.samples.shape == (500, 2)
    # the maximum-likelihood precision of 4000 points is within a few % of the truth
    mle = torch.linalg.inv(torch.cov(x.T))
    err = (net.precision.detach() - mle).abs().max().item()
    assert err < 0.1, (net.precision, mle)


def test_cd_from_data_runs_and_records_evaluations():
    gen = eb.make_generator(1)
    x = gaussian_data(1000, gen)
    net = Quadratic()
    step = functools.partial(eb.samplers.langevin_step, net, step_size=0.05, generator=gen)
    calls = []
    hist = eb.training.train(net, x, step=step, n_steps=3, n_iters=25, batch_size=100, generator=gen,
                             init="data", evaluate=lambda: calls.append(1) or 0.5, eval_every=10,
                             progress=False)
    assert hist.eval_iters == [10, 20, 25] and hist.evals == [0.5] * 3 and len(calls) == 3


def test_kl_term_path_runs_and_gets_gradient():
    gen = eb.make_generator(2)
    x = gaussian_data(1000, gen)
    net = Quadratic()
    step = functools.partial(eb.samplers.langevin_step, net, step_size=0.05, generator=gen)
    buffer = eb.buffers.ReplayBuffer(500, (2,), low=-3.0, high=3.0)
    before = net.chol.detach().clone()
    hist = eb.training.train(net, x, step=step, n_steps=3, n_iters=20, batch_size=100, generator=gen,
                             buffer=buffer, kl_weight=1.0, kl_step_size=0.05, entropy_weight=0.1,
                             progress=False)
    assert len(buffer) == 500 and not torch.equal(before, net.chol.detach())
    assert all(torch.isfinite(torch.tensor(hist.loss)))


def test_unbounded_energy_diverges_with_an_error_naming_the_causes():
    gen = eb.make_generator(3)
    x = gaussian_data(500, gen)
    net = Linear()
    step = functools.partial(eb.samplers.langevin_step, net, step_size=0.5, generator=gen)
    with pytest.raises(eb.training.TrainingDiverged) as err:
        eb.training.train(net, x, step=step, n_steps=10, n_iters=2000, batch_size=100, generator=gen,
                          init="persistent", lr=0.5, max_abs_energy=100.0, progress=False)
    msg = str(err.value)
    assert "learning rate" in msg and "step_size" in msg and "alpha" in msg


def test_non_finite_loss_raises_instead_of_being_patched():
    class NanAfterUpdate(Quadratic):
        def forward(self, x):
            e = super().forward(x)
            return e + torch.where(self.chol[1, 1] != 1.0, torch.nan, 0.0)

    gen = eb.make_generator(4)
    x = gaussian_data(200, gen)
    net = NanAfterUpdate()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    with pytest.raises(eb.training.TrainingDiverged, match="iteration 2"):
        eb.training.train(net, x, step=step, n_steps=2, n_iters=5, batch_size=50, generator=gen,
                          init="data", progress=False)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(init="noise"), ValueError, "init must be"),
    (dict(init="buffer"), ValueError, "ReplayBuffer"),
    (dict(init="data", n_chains=7), ValueError, "n_chains must equal"),
    (dict(n_steps=0), ValueError, "n_steps"),
    (dict(kl_weight=1.0), ValueError, "kl_step_size"),
    (dict(alpha=-0.1), ValueError, "non-negative"),
    (dict(generator=0), TypeError, "make_generator"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, words):
    gen = eb.make_generator(0)
    net = Quadratic()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    args = dict(step=step, n_steps=2, n_iters=2, batch_size=8, generator=gen, init="persistent", progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        eb.training.train(net, torch.zeros(20, 2), **args)


def test_energy_must_be_a_module():
    gen = eb.make_generator(0)
    with pytest.raises(TypeError, match="nn.Module"):
        eb.training.train(eb.energies.banana, torch.zeros(4, 2), step=lambda s: s, n_steps=1, n_iters=1,
                          batch_size=2, generator=gen, progress=False)


def test_learnable_energies_for_images_follow_the_contract():
    x = torch.randn(5, 1, 8, 8, generator=eb.make_generator(0))
    conv = eb.energies.ConvEnergy(8, generator=eb.make_generator(1))
    same = eb.energies.ConvEnergy(8, generator=eb.make_generator(1))
    assert conv(x).shape == (5,) and torch.equal(conv(x), same(x))
    assert eb.energies.ConvEnergy(8, spectral_norm=True)(x).shape == (5,)
    mlp = eb.energies.MLPEnergy(64, (32,), activation="relu", generator=eb.make_generator(1))
    assert mlp(x.flatten(1)).shape == (5,)
    with pytest.raises(ValueError, match=r"\(n, 1, 8, 8\)"):
        conv(x.flatten(1))
    with pytest.raises(ValueError, match="activation"):
        eb.energies.MLPEnergy(2, activation="tanh")


def test_scheduler_is_stepped_once_per_iteration():
    gen = eb.make_generator(5)
    net = Quadratic()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [3], 0.1)
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    eb.training.train(net, gaussian_data(100, gen), step=step, n_steps=1, n_iters=5, batch_size=10,
                      generator=gen, init="data", optimizer=opt, scheduler=sched, progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)
    with pytest.raises(ValueError, match="optimizer="):
        eb.training.train(net, gaussian_data(100, gen), step=step, n_steps=1, n_iters=1, batch_size=10,
                          generator=gen, init="data", scheduler=sched, progress=False)


def test_energy_of_wrong_shape_is_caught():
    class Column(Quadratic):
        def forward(self, x):
            return super().forward(x)[:, None]                      # (n, 1) instead of (n,)

    gen = eb.make_generator(6)
    net = Column()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    with pytest.raises(ValueError, match="squeeze"):
        eb.training.train(net, gaussian_data(50, gen), step=step, n_steps=1, n_iters=1,
                          batch_size=10, generator=gen, init="data", progress=False)


@pytest.mark.parametrize("make", [
    lambda g: eb.energies.MLPEnergy(2, hidden=(16, 16), spectral_norm=True, generator=g),
    lambda g: eb.energies.ConvEnergy(4, spectral_norm=True, generator=g),
])
def test_spectral_norm_networks_depend_on_the_generator_only(make):
    """The same seed gives the same network, including the power iteration's vectors, whatever the global state."""
    nets = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        nets.append(make(eb.make_generator(0)))
    a, b = (dict(net.named_buffers()) for net in nets)
    assert a.keys() == b.keys() and any(k.endswith("_u") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    x = torch.randn(5, *((2,) if isinstance(nets[0], eb.energies.MLPEnergy) else (1, 8, 8)),
                    generator=eb.make_generator(3))
    torch.testing.assert_close(nets[0](x), nets[1](x), rtol=0, atol=0)
