"""The score-matching checkers pass the right answer and name each planted mistake."""

import math

import pytest
import torch
import torch.nn.functional as F

import ebmbook as eb


def dsm(energy, x, sigma, eps, target=lambda eps, sigma: eps / sigma, half=0.5):
    noisy = (x + sigma * eps).requires_grad_(True)
    (g,) = torch.autograd.grad(energy(noisy).sum(), noisy, create_graph=True)
    return half * (g - target(eps, sigma)).square().sum(1).mean()


def sliced(energy, x, v, sign=-1.0, reduced=False):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    gv = (g * v).sum(1)
    (hv,) = torch.autograd.grad(gv.sum(), x, create_graph=True)
    second = g.square().sum(1) if reduced else gv.square()
    return (sign * (hv * v).sum(1) + 0.5 * second).mean()


def nce(energy, x_data, x_noise, noise_log_prob, log_z, swap=False, use_nu=True):
    if swap:
        x_data, x_noise = x_noise, x_data
    nu = len(x_noise) / len(x_data) if use_nu else 1.0
    logit = lambda x: -energy(x) - log_z - noise_log_prob(x) - math.log(nu)
    return -F.logsigmoid(logit(x_data)).mean() - nu * F.logsigmoid(-logit(x_noise)).mean()


@pytest.mark.parametrize("check, right", [(eb.checks.check_dsm_loss, dsm),
                                          (eb.checks.check_sliced_score_matching, sliced),
                                          (eb.checks.check_nce_loss, nce)])
def test_the_right_answer_passes(check, right):
    result = check(right)
    assert result, str(result)


@pytest.mark.parametrize("check, wrong, words", [
    (eb.checks.check_dsm_loss, lambda e, x, s, eps: dsm(e, x, s, eps, target=lambda eps, s: eps / s**2), "σ²"),
    (eb.checks.check_dsm_loss, lambda e, x, s, eps: dsm(e, x, s, eps, target=lambda eps, s: eps * s), "multiplies"),
    (eb.checks.check_dsm_loss, lambda e, x, s, eps: dsm(e, x, s, eps, target=lambda eps, s: -eps / s), "sign"),
    (eb.checks.check_dsm_loss, lambda e, x, s, eps: dsm(e, x, s, eps, half=1.0), "½"),
    (eb.checks.check_sliced_score_matching, lambda e, x, v: sliced(e, x, v, sign=1.0), "sign of the Hessian"),
    (eb.checks.check_sliced_score_matching, lambda e, x, v: sliced(e, x, v, reduced=True), "variance-reduced"),
    (eb.checks.check_nce_loss, lambda *a: nce(*a, swap=True), "swapped"),
    (eb.checks.check_nce_loss, lambda *a: nce(*a, use_nu=False), "ν"),
])
def test_each_planted_mistake_is_named(check, wrong, words):
    result = check(wrong)
    assert not result and words in str(result), str(result)
