"""Training: a short run recovers a Gaussian's precision; train is the chapter's hand-written loop, bit for bit;
divergence raises naming causes; bad input raises."""

import functools

import pytest
import torch
from torch import nn

import ebmbook as eb

nets = eb.nets
dls = eb.samplers.differentiable_langevin_step

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


def make_starts(kind, x, n, gen):
    """The chain starts of each training method: None (CD-k), persistent chains, a replay buffer."""
    if kind == "persistent":
        return eb.buffers.PersistentChains(x[torch.randint(len(x), (n,), generator=gen)])
    if kind == "buffer":
        return eb.buffers.ReplayBuffer(2000, (2,), low=-3.0, high=3.0)
    return None


@pytest.mark.parametrize("kind", ["persistent", "buffer"])
def test_short_training_recovers_a_gaussian_precision(kind):
    gen = eb.make_generator(0)
    x = gaussian_data(4000, gen)
    net = Quadratic()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.3, generator=gen)
    hist = eb.training.train(net, x, step=step, optimizer=torch.optim.Adam(net.parameters(), lr=0.02),
                             n_steps=5, n_iters=400, batch_size=500, generator=gen,
                             starts=make_starts(kind, x, 500, gen))
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
    hist = eb.training.train(net, x, step=step, optimizer=torch.optim.Adam(net.parameters(), lr=1e-3), n_steps=3,
                             n_iters=25, batch_size=100, generator=gen,
                             evaluate=lambda: calls.append(1) or 0.5, eval_every=10)
    assert hist.eval_iters == [10, 20, 25] and hist.evals == [0.5] * 3 and len(calls) == 3
    assert len(hist.energy_data) == len(hist.energy_model) == 25


def test_kl_term_path_runs_and_gets_gradient():
    gen = eb.make_generator(2)
    x = gaussian_data(1000, gen)
    net = Quadratic()
    step = functools.partial(eb.samplers.langevin_step, net, step_size=0.05, generator=gen)
    buffer = eb.buffers.ReplayBuffer(500, (2,), low=-3.0, high=3.0)
    before = net.chol.detach().clone()
    hist = eb.training.train(net, x, step=step, optimizer=torch.optim.Adam(net.parameters(), lr=1e-3), n_steps=3,
                             n_iters=20, batch_size=100, generator=gen, starts=buffer, kl_weight=1.0,
                             entropy_weight=0.1)
    assert len(buffer) == 500 and not torch.equal(before, net.chol.detach())
    assert all(torch.isfinite(torch.tensor(hist.loss)))


def hand_loop(net, x, opt, sched, step, starts, gen, *, kl_weight, n_iters, n_steps=3, batch=64, alpha=0.1):
    """The contrastive-divergence chapter's loop, written out; the KL term as improved_cd describes it."""
    eta = step.keywords["step_size"]
    for it in range(1, n_iters + 1):
        x_pos = x[torch.randint(len(x), (batch,), generator=gen)]                       # (batch, 2)
        x0 = x_pos if starts is None else starts.sample(batch, generator=gen)
        k = n_steps - 1 if kl_weight is not None else n_steps
        x_neg = eb.samplers.run_chain(step, x0, n_steps=k, keep_trajectory=False).state.x
        if kl_weight is not None:               # w = 0: the same sampler and draws, no term
            reference = starts.sample(batch, generator=gen) if len(starts) else None
            x_last = dls(net, x_neg, step_size=eta, generator=gen)
            kl = eb.losses.kl_term(net, x_last, entropy_weight=0.1, reference=reference)
            x_neg = x_last.detach()
        loss = eb.losses.contrastive_divergence(net, x_pos, x_neg, alpha=alpha)
        if kl_weight:
            loss = loss + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if starts is not None:
            starts.push(x_neg)
    return x_neg


@pytest.mark.parametrize("kind, kl_weight", [(None, None), ("persistent", None), ("buffer", None),
                                             ("buffer", 1.0), ("buffer", 0.0)])
def test_train_is_the_hand_written_loop_bit_for_bit(kind, kl_weight):
    """Same seed, same draws (batch indices, chain starts, sampler), same parameters after 20 iterations."""
    results = []
    for use_train in (False, True):
        gen = eb.make_generator(8)
        x = gaussian_data(1000, gen)
        net = nets.MLPEnergy(2, hidden=(16, 16), generator=gen)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [10], 0.1)
        step = functools.partial(eb.samplers.mala_step, net, step_size=0.05, generator=gen)
        starts = make_starts(kind, x, 64, gen)
        if use_train:
            hist = eb.training.train(net, x, step=step, optimizer=opt, scheduler=sched, n_steps=3, n_iters=20,
                                     batch_size=64, generator=gen, starts=starts, alpha=0.1,
                                     kl_weight=kl_weight, entropy_weight=0.0 if kl_weight is None else 0.1)
            x_neg = hist.samples
        else:
            x_neg = hand_loop(net, x, opt, sched, step, starts, gen, kl_weight=kl_weight, n_iters=20)
        results.append((net.state_dict(), x_neg, gen.get_state()))
    (hand, x_hand, g_hand), (ours, x_ours, g_ours) = results
    for k in hand:
        torch.testing.assert_close(ours[k], hand[k], rtol=0, atol=0)
    torch.testing.assert_close(x_ours, x_hand, rtol=0, atol=0)
    assert torch.equal(g_ours, g_hand)                 # and the generator has made the same draws


def test_unbounded_energy_diverges_with_an_error_naming_the_causes():
    gen = eb.make_generator(3)
    x = gaussian_data(500, gen)
    net = Linear()
    step = functools.partial(eb.samplers.langevin_step, net, step_size=0.5, generator=gen)
    with pytest.raises(eb.training.TrainingDiverged) as err:
        eb.training.train(net, x, step=step, optimizer=torch.optim.Adam(net.parameters(), lr=0.5), n_steps=10,
                          n_iters=2000, batch_size=100, generator=gen, starts=make_starts("persistent", x, 100, gen))
    msg = str(err.value)
    assert "iteration" in msg and "learning rate" in msg and "step_size" in msg and "alpha" in msg
    assert isinstance(err.value, FloatingPointError)


def test_non_finite_loss_raises_instead_of_being_patched():
    class NanAfterUpdate(Quadratic):
        def forward(self, x):
            e = super().forward(x)
            return e + torch.where(self.chol[1, 1] != 1.0, torch.nan, 0.0)

    gen = eb.make_generator(4)
    x = gaussian_data(200, gen)
    net = NanAfterUpdate()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    with pytest.raises(eb.training.TrainingDiverged, match="iteration 2.*not finite.*learning rate"):
        eb.training.train(net, x, step=step, optimizer=torch.optim.Adam(net.parameters(), lr=1e-3), n_steps=2,
                          n_iters=5, batch_size=50, generator=gen)


def test_nan_loss_from_the_data_side_raises_naming_the_loss():
    class NanOnData(Quadratic):
        def forward(self, x):                          # NaN far out, where the data lie
            e = super().forward(x)
            return torch.where((x.abs() > 50).any(1), torch.nan, e)

    gen = eb.make_generator(4)
    x = torch.full((20, 2), 100.0)
    net = NanOnData()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    starts = eb.buffers.ReplayBuffer(40, (2,))         # the chains live in [−1, 1]², where E is finite
    with pytest.raises(eb.training.TrainingDiverged, match="iteration 1: the loss is nan"):
        eb.training.train(net, x, step=step, optimizer=torch.optim.SGD(net.parameters(), lr=1e-3), n_steps=1,
                          n_iters=3, batch_size=8, generator=gen, starts=starts)
    assert len(starts) == 0                            # nothing pushed, no step taken


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(starts="buffer"), TypeError, "starts must be"),
    (dict(starts=eb.buffers.ReplayBuffer(10, (3,))), ValueError, "shape"),
    (dict(starts=eb.buffers.PersistentChains(torch.randn(7, 2))), ValueError, "7 persistent chains"),
    (dict(n_steps=0), ValueError, "n_steps"),
    (dict(batch_size=True), ValueError, "batch_size"),
    (dict(eval_every=0), ValueError, "eval_every"),
    (dict(kl_weight=1.0, step=lambda s: s), ValueError, "step_size"),
    (dict(alpha=-0.1), ValueError, "alpha"),
    (dict(entropy_weight=float("nan")), ValueError, "entropy_weight"),
    (dict(entropy_weight=0.1), ValueError, "needs kl_weight"),
    (dict(generator=0), TypeError, "make_generator"),
    (dict(optimizer=None), TypeError, "optimizer"),
    (dict(step=0.1), TypeError, "step must be"),
    (dict(x_data=torch.zeros(20, 2, dtype=torch.long)), TypeError, "floating point"),
    (dict(x_data=torch.zeros(0, 2)), ValueError, "empty"),
    (dict(x_data=torch.zeros(20)), ValueError, "shape"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, words):
    gen = eb.make_generator(0)
    net = Quadratic()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    args = dict(x_data=torch.randn(20, 2, generator=gen), step=step,
                optimizer=torch.optim.Adam(net.parameters(), lr=1e-3), n_steps=2, n_iters=2, batch_size=8,
                generator=gen)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        eb.training.train(net, **args)


@pytest.mark.parametrize("dropped", [dict(lr=0.1), dict(init="buffer"), dict(n_chains=8), dict(max_abs_energy=1.0),
                                     dict(kl_step_size=0.1), dict(buffer=None)])
def test_dropped_options_fail_loudly(dropped):
    gen = eb.make_generator(0)
    net = Quadratic()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    with pytest.raises(TypeError, match="unexpected keyword"):
        eb.training.train(net, torch.randn(20, 2), step=step, optimizer=torch.optim.Adam(net.parameters()),
                          n_steps=1, n_iters=1, batch_size=8, generator=gen, **dropped)


def test_energy_must_be_a_module():
    gen = eb.make_generator(0)
    with pytest.raises(TypeError, match="nn.Module"):
        eb.training.train(eb.energies.banana, torch.zeros(4, 2), step=lambda s: s, optimizer=None, n_steps=1,
                          n_iters=1, batch_size=2, generator=gen)


def test_learnable_energies_for_images_follow_the_contract():
    x = torch.randn(5, 1, 8, 8, generator=eb.make_generator(0))
    conv = nets.ConvEnergy(8, generator=eb.make_generator(1))
    same = nets.ConvEnergy(8, generator=eb.make_generator(1))
    assert conv(x).shape == (5,) and torch.equal(conv(x), same(x))
    assert nets.ConvEnergy(8, spectral_norm=True)(x).shape == (5,)
    mlp = nets.MLPEnergy(64, (32,), activation="relu", generator=eb.make_generator(1))
    assert mlp(x.flatten(1)).shape == (5,)
    with pytest.raises(ValueError, match=r"\(n, 1, 8, 8\)"):
        conv(x.flatten(1))
    with pytest.raises(ValueError, match="activation"):
        nets.MLPEnergy(2, activation="tanh")


def test_scheduler_is_stepped_once_per_iteration():
    gen = eb.make_generator(5)
    net = Quadratic()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [3], 0.1)
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    eb.training.train(net, gaussian_data(100, gen), step=step, optimizer=opt, scheduler=sched, n_steps=1,
                      n_iters=5, batch_size=10, generator=gen)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_energy_of_wrong_shape_is_caught():
    class Column(Quadratic):
        def forward(self, x):
            return super().forward(x)[:, None]                      # (n, 1) instead of (n,)

    gen = eb.make_generator(6)
    net = Column()
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.1, generator=gen)
    with pytest.raises(ValueError, match="squeeze"):
        eb.training.train(net, gaussian_data(50, gen), step=step, optimizer=torch.optim.Adam(net.parameters()),
                          n_steps=1, n_iters=1, batch_size=10, generator=gen)


@pytest.mark.parametrize("make", [
    lambda g: nets.MLPEnergy(2, hidden=(16, 16), spectral_norm=True, generator=g),
    lambda g: nets.ConvEnergy(4, spectral_norm=True, generator=g),
])
def test_spectral_norm_networks_depend_on_the_generator_only(make):
    """The same seed gives the same network, including the power iteration's vectors, whatever the global state."""
    made = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        made.append(make(eb.make_generator(0)))
    a, b = (dict(net.named_buffers()) for net in made)
    assert a.keys() == b.keys() and any(k.endswith("_u") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    x = torch.randn(5, *((2,) if isinstance(made[0], nets.MLPEnergy) else (1, 8, 8)),
                    generator=eb.make_generator(3))
    torch.testing.assert_close(made[0](x), made[1](x), rtol=0, atol=0)


def test_the_kl_control_differs_from_the_kl_run_only_by_the_term():
    """kl_weight=0.0 makes the same draws as kl_weight=1.0 and lands elsewhere; None makes fewer."""
    finals = {}
    for w in (None, 0.0, 1.0):
        gen = eb.make_generator(8)
        x = gaussian_data(500, gen)
        net = nets.MLPEnergy(2, hidden=(8,), generator=gen)
        step = functools.partial(eb.samplers.mala_step, net, step_size=0.05, generator=gen)
        eb.training.train(net, x, step=step, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), n_steps=3,
                          n_iters=5, batch_size=32, generator=gen, starts=make_starts("buffer", x, 32, gen),
                          kl_weight=w)
        finals[w] = (gen.get_state(), net.net[0].weight.detach().clone())
    assert torch.equal(finals[0.0][0], finals[1.0][0]) and not torch.equal(finals[None][0], finals[0.0][0])
    assert not torch.equal(finals[0.0][1], finals[1.0][1])


def test_an_ensemble_trains_each_member_as_if_alone():
    """One Adam step on the batch mean = each member's own Adam step on its block (Adam ignores the 1/m)."""
    gen = eb.make_generator(9)
    ens = nets.MLPEnsemble(3, 2, (8, 8), generator=gen)
    singles = [ens.member(s) for s in range(3)]
    x_pos, x_neg = torch.randn(30, 2, generator=gen), torch.randn(30, 2, generator=gen)
    for net, xp, xn in [(ens, x_pos, x_neg), *zip(singles, x_pos.split(10), x_neg.split(10))]:
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            eb.losses.contrastive_divergence(net, xp, xn, alpha=0.1).backward()
            opt.step()
    for s, single in enumerate(singles):
        torch.testing.assert_close(ens.member(s)(x_pos), single(x_pos), atol=1e-5, rtol=0)


def test_evaluate_may_return_one_value_per_member():
    gen = eb.make_generator(1)
    x = gaussian_data(200, gen)
    ens = nets.MLPEnsemble(2, 2, (8,), generator=gen)
    starts = eb.buffers.MemberStarts([eb.buffers.ReplayBuffer(64, (2,), low=-3.0, high=3.0) for _ in range(2)])
    step = functools.partial(eb.samplers.mala_step, ens, step_size=0.05, generator=gen)
    hist = eb.training.train(ens, x, step=step, optimizer=torch.optim.Adam(ens.parameters(), lr=1e-3), n_steps=2,
                             n_iters=4, batch_size=16, generator=gen, starts=starts, eval_every=2,
                             evaluate=lambda: [ens.member(s)(x[:5]).mean().item() for s in range(2)])
    assert hist.eval_iters == [2, 4] and all(isinstance(v, tuple) and len(v) == 2 for v in hist.evals)
    assert len(starts.members[0]) == len(starts.members[1]) == 4 * 8      # 4 iterations, 8 chains each
    with pytest.raises(ValueError, match="single network"):
        eb.training.train(ens, x, step=step, optimizer=torch.optim.Adam(ens.parameters()), n_steps=2, n_iters=1,
                          batch_size=16, generator=gen, starts=starts, kl_weight=1.0, entropy_weight=0.1)


@pytest.mark.parametrize("flipped", [False, True])
def test_cd_with_the_sign_flipped_fails_the_chapters_criterion(flipped):
    """The contrastive-divergence chapter accepts a trained model when its exact NLL − H is below 0.2 nats.

    The same loop with the two phases swapped (the sign of the CD loss flipped) must be rejected by it.
    """
    gen = eb.make_generator(5)
    x, x_test = gaussian_data(2000, gen), gaussian_data(2000, gen)
    grid = eb.grid.make_grid(-6.0, 6.0, 96, dim=2)
    truth = Quadratic()
    with torch.no_grad():
        truth.chol.copy_(torch.linalg.cholesky(PRECISION - 0.01 * torch.eye(2)))
    entropy = eb.grid.entropy(truth, grid).item()
    net = Quadratic()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    step = functools.partial(eb.samplers.mala_step, net, step_size=0.3, generator=gen)
    chains = eb.buffers.PersistentChains(x[:500])
    for _ in range(150):
        x_pos = x[torch.randint(len(x), (500,), generator=gen)]
        x_neg = eb.samplers.run_chain(step, chains.sample(500), n_steps=3, keep_trajectory=False).state.x
        chains.push(x_neg)
        loss = eb.losses.contrastive_divergence(net, *((x_neg, x_pos) if flipped else (x_pos, x_neg)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        gap = eb.grid.nll(net, x_test, grid).item() - entropy
    assert (gap < 0.2) != flipped, gap
