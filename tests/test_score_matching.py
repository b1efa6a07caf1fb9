"""Score matching and NCE: each estimator against its closed form on Gaussians, sliced SM unbiased for
exact SM, the known optima (Σ⁻¹, (Σ + σ²I)⁻¹, NCE's mean, precision and log Z), gradients, bad inputs."""

import math
from unittest import mock

import pytest
import torch
from torch import nn

import ebmbook as eb

sm = eb.score_matching
COV = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)


class Quadratic(nn.Module):
    """E(x) = ½ (x − m)ᵀ A (x − m), A = sym(B); float64."""

    def __init__(self, a, m=None):
        super().__init__()
        self.b = nn.Parameter(torch.as_tensor(a, dtype=torch.float64).clone())
        self.m = nn.Parameter(torch.zeros(len(a), dtype=torch.float64) if m is None else m.clone())

    @property
    def precision(self):
        return 0.5 * (self.b + self.b.T)

    def forward(self, x):
        z = x.flatten(1) - self.m
        return 0.5 * ((z @ self.precision) * z).sum(1)


def gaussian(n, seed, cov=COV):
    g = eb.make_generator(seed)
    return torch.randn(n, len(cov), generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T


def test_exact_sm_is_half_the_squared_score_minus_the_hessian_trace():
    a = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    x = gaussian(50, 0)
    expected = (0.5 * (x @ a).square().sum(1) - a.trace()).mean()     # ∇E = Ax, ∇²E = A
    torch.testing.assert_close(sm.exact_score_matching(Quadratic(a), x), expected, rtol=1e-12, atol=1e-12)


def test_exact_sm_handles_event_shapes_and_energies_linear_in_x():
    w = torch.randn(1, 2, 2, dtype=torch.float64, generator=eb.make_generator(1))
    x = torch.randn(7, 1, 2, 2, dtype=torch.float64, generator=eb.make_generator(2))
    linear = lambda z: (z * w).flatten(1).sum(1)                       # ∇²E = 0
    torch.testing.assert_close(sm.exact_score_matching(linear, x), 0.5 * w.square().sum())


def _minimize(loss_fn, params, steps=200):
    opt = torch.optim.LBFGS(params, lr=1, max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


def test_exact_sm_recovers_the_inverse_second_moment():
    """J(A) = ½ tr(A² S) − tr A on data with second moment S is minimal at A = S⁻¹."""
    x = gaussian(4000, 3)
    model = Quadratic(torch.eye(2))
    _minimize(lambda: sm.exact_score_matching(model, x), [model.b])
    target = torch.linalg.inv(x.T @ x / len(x))
    assert torch.linalg.norm(model.precision - target) / torch.linalg.norm(target) < 1e-6


@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
@pytest.mark.parametrize("variance_reduced", [True, False])
def test_sliced_sm_is_unbiased_for_exact_sm(projection, variance_reduced):
    """Over many projections the sliced objective's mean is the exact one, within 4 standard errors."""
    a = torch.tensor([[2.0, 0.8], [0.8, 0.5]], dtype=torch.float64)
    model, x = Quadratic(a), gaussian(20, 4)
    exact = sm.exact_score_matching(model, x).item()
    g = eb.make_generator(5)
    draws = torch.tensor([sm.sliced_score_matching(model, x, generator=g, projection=projection,
                                                   variance_reduced=variance_reduced).item() for _ in range(2000)])
    se = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - exact) < 4 * se, (draws.mean(), exact, se)
    assert se > 0                                       # the projections are random


def test_variance_reduction_lowers_the_variance():
    a = torch.tensor([[2.0, 0.8], [0.8, 0.5]], dtype=torch.float64)
    model, x = Quadratic(a), gaussian(20, 4)
    spread = {}
    for vr in (True, False):
        g = eb.make_generator(6)
        spread[vr] = torch.tensor([sm.sliced_score_matching(model, x, generator=g, variance_reduced=vr).item()
                                   for _ in range(500)]).std().item()
    assert spread[True] < 0.8 * spread[False], spread


def test_sliced_sm_recovers_the_inverse_second_moment():
    x = gaussian(4000, 7)
    model = Quadratic(torch.eye(2))
    opt = torch.optim.Adam([model.b], lr=0.02)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [600, 900], gamma=0.1)   # settle the stochastic steps
    g = eb.make_generator(8)
    for _ in range(1200):
        opt.zero_grad()
        sm.sliced_score_matching(model, x, generator=g).backward()
        opt.step()
        sched.step()
    target = torch.linalg.inv(x.T @ x / len(x))
    assert torch.linalg.norm(model.precision - target) / torch.linalg.norm(target) < 0.02


def test_dsm_recovers_the_precision_of_the_noisy_data():
    """One noise level σ: the optimal quadratic energy has precision (Σ + σ²I)⁻¹, not Σ⁻¹."""
    sigma, x = 0.5, gaussian(100_000, 9)
    model = Quadratic(torch.eye(2))
    _minimize(lambda: sm.denoising_score_matching(model, x, sigma=sigma, generator=eb.make_generator(10)),
              [model.b])
    target = torch.linalg.inv(COV + sigma**2 * torch.eye(2, dtype=torch.float64))
    err = torch.linalg.norm(model.precision - target) / torch.linalg.norm(target)
    assert err < 0.02, (model.precision, target)
    assert torch.linalg.norm(model.precision - torch.linalg.inv(COV)) / torch.linalg.norm(target) > 0.2


def test_multilevel_dsm_weights_by_sigma_squared_and_calls_a_conditional_energy():
    """With levels, row i's term is ½‖σᵢ∇E(x̃ᵢ, σᵢ) − εᵢ‖², the draws are the level indices, then ε."""
    a = torch.tensor([[1.5, 0.2], [0.2, 0.7]], dtype=torch.float64)
    x, levels = gaussian(64, 11), torch.tensor([0.1, 1.0, 3.0], dtype=torch.float64)
    seen = []

    def conditional(z, s):                                # E(x, σ) = ½ xᵀ A x / (1 + σ²)
        seen.append(s)
        return 0.5 * ((z @ a) * z).sum(1) / (1 + s**2)

    loss = sm.denoising_score_matching(conditional, x, sigma=levels, generator=eb.make_generator(12))
    g = eb.make_generator(12)
    s = levels[torch.randint(3, (64,), generator=g)]
    eps = torch.randn(x.shape, generator=g, dtype=torch.float64)
    noisy = x + s[:, None] * eps
    grad = (noisy @ a) / (1 + s[:, None] ** 2)
    expected = 0.5 * (s[:, None] * grad - eps).square().sum(1).mean()
    torch.testing.assert_close(loss, expected)
    assert torch.equal(seen[0], s)


def test_nce_recovers_mean_precision_and_log_z():
    mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    x = gaussian(20_000, 13) + mean
    noise = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                   4 * torch.eye(2, dtype=torch.float64))
    y = 2 * torch.randn(40_000, 2, generator=eb.make_generator(14), dtype=torch.float64)   # samples of `noise`
    model = Quadratic(torch.eye(2), m=torch.zeros(2, dtype=torch.float64))
    log_z = nn.Parameter(torch.zeros((), dtype=torch.float64))
    _minimize(lambda: sm.nce_loss(model, x, y, noise_log_prob=noise, log_z=log_z), [model.b, model.m, log_z])
    precision = torch.linalg.inv(COV)
    true_log_z = 0.5 * torch.logdet(2 * math.pi * COV)
    assert torch.linalg.norm(model.m - mean) < 0.05
    assert torch.linalg.norm(model.precision - precision) / torch.linalg.norm(precision) < 0.05
    assert abs(log_z.item() - true_log_z.item()) < 0.03
    # and log Z is the log-partition function of the learned energy itself
    own = 0.5 * torch.logdet(2 * math.pi * torch.linalg.inv(model.precision.detach()))
    assert abs(log_z.item() - own.item()) < 0.03


@pytest.mark.parametrize("loss", ["exact", "sliced", "dsm", "nce"])
def test_gradients_reach_the_parameters(loss):
    net = eb.nets.MLPEnergy(2, (8,), generator=eb.make_generator(0))
    x = torch.randn(16, 2, generator=eb.make_generator(1))
    g = eb.make_generator(2)
    value = {"exact": lambda: sm.exact_score_matching(net, x),
             "sliced": lambda: sm.sliced_score_matching(net, x, generator=g, n_projections=2),
             "dsm": lambda: sm.denoising_score_matching(net, x, sigma=0.1, generator=g),
             "nce": lambda: sm.nce_loss(net, x, 2 * torch.randn(32, 2, generator=g),
                                        noise_log_prob=lambda y: -0.5 * (y / 2).square().sum(1), log_z=0.0)}[loss]()
    assert value.dim() == 0 and torch.isfinite(value)
    grads = torch.autograd.grad(value, list(net.parameters()), allow_unused=True)
    assert any(gr is not None and gr.abs().sum() > 0 for gr in grads)


@pytest.mark.parametrize("d", [2, 8, 32])
def test_backward_passes_are_one_plus_d_for_exact_one_plus_p_for_sliced_one_for_dsm(d):
    """The costs the docstrings state, counted as calls of torch.autograd.grad (one input-gradient pass each)."""
    net = eb.nets.MLPEnergy(d, (16,), generator=eb.make_generator(0))
    x = torch.randn(8, d, generator=eb.make_generator(1))
    g = eb.make_generator(2)
    calls = {"exact": lambda: sm.exact_score_matching(net, x),
             "sliced, p = 1": lambda: sm.sliced_score_matching(net, x, generator=g),
             "sliced, p = 3": lambda: sm.sliced_score_matching(net, x, generator=g, n_projections=3),
             "sliced, p = 3, plain": lambda: sm.sliced_score_matching(net, x, generator=g, n_projections=3,
                                                                      variance_reduced=False),
             "dsm": lambda: sm.denoising_score_matching(net, x, sigma=0.1, generator=g)}
    expected = {"exact": 1 + d, "sliced, p = 1": 2, "sliced, p = 3": 4, "sliced, p = 3, plain": 4, "dsm": 1}
    for name, call in calls.items():
        with mock.patch("torch.autograd.grad", wraps=torch.autograd.grad) as grad:
            value = call()
        assert torch.isfinite(value), name
        assert grad.call_count == expected[name], f"{name}: {grad.call_count} backward passes for d = {d}"


@pytest.mark.parametrize("call, error, words", [
    (lambda e, x, g: sm.denoising_score_matching(e, x, sigma=0.0, generator=g), ValueError, "sigma"),
    (lambda e, x, g: sm.denoising_score_matching(e, x, sigma=torch.tensor([0.1, -1.0]), generator=g),
     ValueError, "positive noise levels"),
    (lambda e, x, g: sm.denoising_score_matching(e, x, sigma=0.1, generator=0), TypeError, "make_generator"),
    (lambda e, x, g: sm.denoising_score_matching(lambda z: e(z) / 0, x, sigma=0.1, generator=g), ValueError,
     "not finite"),
    (lambda e, x, g: sm.sliced_score_matching(e, x, generator=g, n_projections=0), ValueError, "n_projections"),
    (lambda e, x, g: sm.sliced_score_matching(e, x, generator=g, projection="uniform"), ValueError, "gaussian"),
    (lambda e, x, g: sm.exact_score_matching(e, x[0]), ValueError, "shape"),
    (lambda e, x, g: sm.nce_loss(e, x, x, noise_log_prob=None, log_z=0.0), TypeError, "log-density"),
    (lambda e, x, g: sm.nce_loss(e, x, x, noise_log_prob=lambda y: y, log_z=0.0), ValueError, "sum over the event"),
    (lambda e, x, g: sm.nce_loss(e, x, x[:, :1], noise_log_prob=lambda y: y.sum(1), log_z=0.0), ValueError, "x_noise"),
    (lambda e, x, g: sm.nce_loss(e, x, x, noise_log_prob=lambda y: y.sum(1), log_z=torch.zeros(2)), ValueError,
     "0-dim"),
])
def test_bad_inputs_raise_clear_errors(call, error, words):
    net = eb.nets.MLPEnergy(2, (8,), generator=eb.make_generator(0))
    with pytest.raises(error, match=words):
        call(net, torch.randn(8, 2, generator=eb.make_generator(1)), eb.make_generator(2))


@pytest.mark.gpu
def test_the_estimators_run_on_cuda():
    """Exact SM and NCE equal their CPU values; sliced SM is unbiased there; DSM uses the CUDA generator's draws."""
    device = torch.device("cuda")
    a = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    x = gaussian(64, 15)
    lp = lambda y: -0.5 * (y / 2).square().sum(1)
    model, xd = Quadratic(a).to(device), x.to(device)
    exact = sm.exact_score_matching(model, xd)
    torch.testing.assert_close(exact.cpu(), sm.exact_score_matching(Quadratic(a), x))
    torch.testing.assert_close(sm.nce_loss(model, xd, 2 * xd, noise_log_prob=lp, log_z=0.1).cpu(),
                               sm.nce_loss(Quadratic(a), x, 2 * x, noise_log_prob=lp, log_z=0.1))
    g = eb.make_generator(16, device)
    draws = torch.stack([sm.sliced_score_matching(model, xd, generator=g).detach() for _ in range(500)])
    assert abs(draws.mean() - exact.detach()) < 4 * draws.std() / math.sqrt(500)
    loss = sm.denoising_score_matching(model, xd, sigma=0.5, generator=eb.make_generator(17, device))
    eps = torch.randn(xd.shape, generator=eb.make_generator(17, device), dtype=torch.float64, device=device)
    expected = 0.5 * (((xd + 0.5 * eps) @ a.to(device)) - eps / 0.5).square().sum(1).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.gpu
def test_noise_conditional_energy_trains_by_multilevel_dsm_on_cuda():
    """Multi-level DSM of a NoiseConditionalEnergy on CUDA: the CUDA generator's draws, ∇ₓg regressed on ε."""
    device = torch.device("cuda")
    net = eb.nets.NoiseConditionalEnergy(2, (16, 16), generator=eb.make_generator(18)).to(device)
    inner = eb.nets.MLPEnergy(3, (16, 16), generator=eb.make_generator(18)).to(device)
    x = eb.data.two_moons(256, generator=eb.make_generator(19, device))
    levels = torch.tensor([0.05, 0.3, 1.0])                              # on the CPU: moved to x's device
    loss = sm.denoising_score_matching(net, x, sigma=levels, generator=eb.make_generator(20, device))
    assert loss.device.type == "cuda" and loss.dim() == 0 and torch.isfinite(loss)
    *weights, bias = net.parameters()                                   # the output bias adds b/σ, no score
    grads = torch.autograd.grad(loss, [*weights, bias], allow_unused=True)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads[:-1]) and grads[-1] is None
    draws = eb.make_generator(20, device)
    s = levels.to(device)[torch.randint(3, (256,), generator=draws, device=device)]
    eps = torch.randn(x.shape, generator=draws, device=device)
    g = eb.energies.grad_energy(inner, torch.cat([x + s[:, None] * eps, s.log()[:, None]], 1))[:, :2]
    torch.testing.assert_close(loss.detach(), 0.5 * (g - eps).square().sum(1).mean())
    # 50 Adam steps, each on draws of its own seed, lower the loss on the first draws (0.96 -> 0.68 on a CPU)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for i in range(50):
        opt.zero_grad()
        sm.denoising_score_matching(net, x, sigma=levels, generator=eb.make_generator(21 + i, device)).backward()
        opt.step()
    after = sm.denoising_score_matching(net, x, sigma=levels, generator=eb.make_generator(20, device))
    assert after < loss.detach(), (loss.item(), after.item())
