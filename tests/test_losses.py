"""Losses: the CD objective's value, sign and gradient against closed forms; the KL term's gradient path."""

import math

import pytest
import torch
from torch import nn

import ebmbook as eb

L = eb.losses
nets = eb.nets
dls = eb.samplers.differentiable_langevin_step


class ScaledSquare(nn.Module):
    """E_θ(x) = θ/2 ‖x‖², a Gaussian of precision θ; ∂E/∂θ = ‖x‖²/2."""

    def __init__(self, theta: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.theta * x.flatten(1).square().sum(1)


def test_cd_value_and_gradient_match_the_nll_gradient_formula(gen):
    net = ScaledSquare(1.5)
    x_pos = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    x_neg = 3 * torch.randn(70, 2, generator=gen, dtype=torch.float64)
    loss = L.contrastive_divergence(net, x_pos, x_neg)
    sq_pos, sq_neg = x_pos.square().sum(1).mean() / 2, x_neg.square().sum(1).mean() / 2
    torch.testing.assert_close(loss, 1.5 * (sq_pos - sq_neg))
    loss.backward()
    # ∇θ = E_data[∂θE] − E_model[∂θE]: negative here (samples are wider than data), so θ grows
    torch.testing.assert_close(net.theta.grad, sq_pos - sq_neg)
    assert net.theta.grad < 0


def test_cd_zero_gap_when_samples_are_the_data(gen):
    net = ScaledSquare(0.7)
    x = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    loss = L.contrastive_divergence(net, x, x.clone())
    loss.backward()
    assert loss.item() == 0.0 and net.theta.grad.item() == 0.0


def test_cd_regularizer_and_detached_samples(gen):
    net = ScaledSquare(2.0)
    x_pos = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    x_neg = torch.randn(30, 2, generator=gen, dtype=torch.float64).requires_grad_(True)
    loss = L.contrastive_divergence(net, x_pos, x_neg, alpha=0.3)
    e_pos, e_neg = net(x_pos), net(x_neg)
    want = e_pos.mean() - e_neg.mean() + 0.3 * (e_pos.square().mean() + e_neg.square().mean())
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert x_neg.grad is None                      # the samples are constants


def test_differentiable_step_is_the_samplers_ula_step(gen):
    net = ScaledSquare(1.3)
    x = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    ours = dls(net, x, step_size=0.05, generator=eb.make_generator(7))
    state = eb.samplers.init_state(net, x)
    theirs, _ = eb.samplers.langevin_step(net, state, step_size=0.05, generator=eb.make_generator(7))
    torch.testing.assert_close(ours.detach(), theirs.x)
    assert ours.requires_grad


def test_kl_term_gradient_flows_through_the_step_not_the_frozen_parameters(gen):
    theta, eta = 1.3, 0.05
    net = ScaledSquare(theta)
    x = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    loss = L.kl_term(net, dls(net, x, step_size=eta, generator=eb.make_generator(3)))
    loss.backward()
    # x′ = (1 − ηθ) x + √(2η) ξ, so dx′/dθ = −η x; frozen E = θ̄/2 ‖x′‖²
    xi = torch.randn(x.shape, generator=eb.make_generator(3), dtype=torch.float64)
    x_next = (1 - eta * theta) * x + math.sqrt(2 * eta) * xi
    through_sample = (theta * (x_next * (-eta * x)).sum(1)).mean()
    through_params = (0.5 * x_next.square().sum(1)).mean()
    torch.testing.assert_close(net.theta.grad, through_sample)
    assert abs(through_params) > 10 * abs(through_sample - net.theta.grad)   # would be visible
    torch.testing.assert_close(loss, (0.5 * theta * x_next.square().sum(1)).mean())


def test_kl_term_freezes_module_parameters_and_leaves_the_module_alone(gen):
    net = nets.MLPEnergy(2, (8,), generator=gen)
    x = torch.randn(5, 2, generator=gen, requires_grad=True)
    L.kl_term(net, x).backward()
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    torch.testing.assert_close(x.grad, eb.energies.grad_energy(net, x) / 5)


def test_nn_entropy_of_known_laws(gen):
    n = 4000
    # standard normal in 2-D: H = log(2πe); the estimator's standard error is ≈ 1.28/√n ≈ 0.02
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    assert abs(L._nn_entropy(x).item() - math.log(2 * math.pi * math.e)) < 0.1
    ref = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    assert abs(L._nn_entropy(x, ref).item() - math.log(2 * math.pi * math.e)) < 0.1
    # uniform on [0, 3]: H = log 3 (boundary effects are O(1/n))
    u = 3 * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    assert abs(L._nn_entropy(u).item() - math.log(3)) < 0.1
    # spreading the points raises the estimate by exactly d log(scale)
    torch.testing.assert_close(L._nn_entropy(2 * x), L._nn_entropy(x) + 2 * math.log(2))


def test_kl_term_entropy_pushes_samples_apart(gen):
    net = ScaledSquare(1.0)
    x = 0.1 * torch.randn(100, 2, generator=gen, dtype=torch.float64)
    x_next = dls(net, x, step_size=0.01, generator=eb.make_generator(0))
    with_ent = L.kl_term(net, x_next, entropy_weight=1.0)
    without = L.kl_term(net, x_next)
    torch.testing.assert_close(with_ent, without - L._nn_entropy(x_next.detach()))
    ref = x_next.detach()[:50] + 0.01
    torch.testing.assert_close(L.kl_term(net, x_next, entropy_weight=0.5, reference=ref),
                               without - 0.5 * L._nn_entropy(x_next.detach(), ref))
    # the entropy's gradient moves samples apart: it points away from the nearest neighbour
    (grad,) = torch.autograd.grad(L.kl_term(net, x_next, entropy_weight=1.0) - without, x_next)
    x_det = x_next.detach()
    nearest = torch.cdist(x_det, x_det).fill_diagonal_(math.inf).argmin(1)   # (n,)
    away = x_det - x_det[nearest]                                      # (n, 2)
    assert ((grad * away).sum(1) < 0).float().mean() > 0.9            # descent along −grad increases distance


@pytest.mark.parametrize("call, error, words", [
    (lambda n, x: L.contrastive_divergence(n, x, torch.zeros(4, 3)), ValueError, "event shape"),
    (lambda n, x: L.contrastive_divergence(n, x[0], x), ValueError, "(n, *event_shape)"),
    (lambda n, x: L.contrastive_divergence(n, x, x[:0]), ValueError, "empty batch"),
    (lambda n, x: L.contrastive_divergence(n, x, x.double()), ValueError, "convert one"),
    (lambda n, x: L.contrastive_divergence(n, x, x, alpha=-1.0), ValueError, "alpha"),
    (lambda n, x: L.contrastive_divergence(n, x.long(), x), TypeError, "floating point"),
    (lambda n, x: L.contrastive_divergence(n, x.tolist(), x), TypeError, "torch.Tensor"),
    (lambda n, x: L.kl_term(n, x), ValueError, "differentiable_langevin_step"),
    (lambda n, x: L.kl_term(n, x.requires_grad_(), entropy_weight=-1.0), ValueError, "entropy_weight"),
    (lambda n, x: L.kl_term(n, x.requires_grad_(), entropy_weight=1.0, reference=torch.zeros(3, 5)), ValueError,
     "event shape"),
    (lambda n, x: dls(n, x, step_size=0.0, generator=eb.make_generator(0)), ValueError, "step_size"),
    (lambda n, x: dls(n, x, step_size=0.1, generator=0), TypeError, "make_generator"),
    (lambda n, x: L._nn_entropy(torch.zeros(3, 2)), ValueError, "coincide"),
    (lambda n, x: L._nn_entropy(x[:1]), ValueError, "more than one point"),
])
def test_bad_inputs_raise_clear_errors(call, error, words):
    net = ScaledSquare(1.0).float()
    x = torch.randn(4, 2)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        call(net, x)


def test_check_cd_loss_accepts_the_package_loss_and_explains_mistakes():
    good = eb.checks.check_cd_loss(lambda e, xp, xn: L.contrastive_divergence(e, xp, xn))
    assert good and "✓" in repr(good)
    flipped = eb.checks.check_cd_loss(lambda e, xp, xn: e(xn.detach()).mean() - e(xp).mean())
    assert not flipped and "sign is flipped" in repr(flipped)
    no_detach = eb.checks.check_cd_loss(lambda e, xp, xn: e(xp).mean() - e(xn).mean())
    assert not no_detach and "detach" in repr(no_detach)
    summed = eb.checks.check_cd_loss(lambda e, xp, xn: e(xp).sum() - e(xn.detach()).sum())
    assert not summed and "differs" in repr(summed)


def test_nn_entropy_sees_small_distances_among_large_coordinates(gen):
    # points 1e-3 apart around 100: a matrix-product distance would cancel to 0 in float32
    x = 100 + 1e-3 * torch.randn(200, 2, generator=gen)
    ref = 100 + 1e-3 * torch.randn(300, 2, generator=gen)
    h = L._nn_entropy(x, ref).item()
    assert abs(h - (math.log(2 * math.pi * math.e) + 2 * math.log(1e-3))) < 0.3


def test_check_kl_term_accepts_the_package_term_and_rejects_the_wrong_sign():
    assert eb.checks.check_kl_term(L.kl_term)
    flipped = eb.checks.check_kl_term(lambda e, x: -L.kl_term(e, x))
    unfrozen = eb.checks.check_kl_term(lambda e, x: e(x).mean())
    assert not flipped and "sign is flipped" in repr(flipped)
    assert not unfrozen and "freeze the parameters" in repr(unfrozen)


def test_the_kl_term_is_minus_the_part_of_the_cd_gradient_that_standard_cd_drops():
    # 1-D closed form: data N(0, 1), E_θ(x) = (x − θ)²/2, one ULA step from the data, q_θ = N(ηθ, 1 + η²).
    # dL_CD/dθ = θ(2η − η²); standard CD gives ηθ; the Monte Carlo gradient of kl_term must be
    # −θη(1 − η) = −0.09 (standard error η·√(1 + η²)/√n ≈ 3e-4), not +0.09
    eta, theta, n = 0.1, 1.0, 100_000
    model = eb.checks.improved_cd._Shifted(torch.tensor(theta, dtype=torch.float64))
    gen = eb.make_generator(3)
    x = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    x_next = eb.samplers.differentiable_langevin_step(model, x, step_size=eta, generator=gen)
    (grad_kl,) = torch.autograd.grad(L.kl_term(model, x_next), model.theta)
    exact, standard = theta * (2 * eta - eta**2), eta * theta
    assert abs(grad_kl.item() - (standard - exact)) < 5 * eta * math.sqrt(1 + eta**2) / math.sqrt(n)
