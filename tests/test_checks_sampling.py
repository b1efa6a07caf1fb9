"""The sampling checkers pass a reference solution and name each typical mistake."""

import math

import pytest
import torch

import ebmbook as eb


def good_mh(energy, x, x_proposed, u):
    log_alpha = torch.clamp(energy(x) - energy(x_proposed), max=0.0)
    return torch.where((torch.log(u) < log_alpha)[:, None], x_proposed, x)


def good_langevin(energy, x, step_size, noise):
    return x - step_size * eb.energies.grad_energy(energy, x) + math.sqrt(2 * step_size) * noise


def test_mh_checker_passes_a_correct_solution():
    result = eb.checks.check_mh_accept(good_mh)
    assert result and repr(result).startswith("✓"), repr(result)


def test_mh_checker_passes_the_probability_form():
    def with_min(energy, x, x_proposed, u):
        alpha = torch.clamp(torch.exp(energy(x) - energy(x_proposed)), max=1.0)
        return torch.where((u < alpha)[:, None], x_proposed, x)

    assert eb.checks.check_mh_accept(with_min)


@pytest.mark.parametrize("fn, hint", [
    (lambda e, x, xp, u: torch.where((torch.log(u) < (e(xp) - e(x)).clamp(max=0))[:, None], xp, x),
     "sign is flipped"),
    (lambda e, x, xp, u: torch.where((u > torch.exp(e(x) - e(xp)).clamp(max=1))[:, None], xp, x),
     "not when u > α"),
    (lambda e, x, xp, u: xp.clone(), "every proposal was accepted"),
    (lambda e, x, xp, u: x.clone(), "no proposal was accepted"),
    (lambda e, x, xp, u: torch.where((u < torch.exp(-e(xp)) / torch.exp(-e(x)))[:, None], xp, x),
     "underflowed"),
    (lambda e, x, xp, u: torch.where(u < torch.exp(e(x) - e(xp)), xp[:, 0], x[:, 0]), "shape (n, d)"),
])
def test_mh_checker_names_the_mistake(fn, hint):
    result = eb.checks.check_mh_accept(fn)
    assert not result and hint in repr(result), repr(result)


def test_mh_checker_catches_in_place_updates():
    def in_place(energy, x, x_proposed, u):
        accepted = torch.log(u) < (energy(x) - energy(x_proposed)).clamp(max=0)
        x[accepted] = x_proposed[accepted]
        return x

    assert "in place" in repr(eb.checks.check_mh_accept(in_place))


def test_langevin_checker_passes_a_correct_solution():
    result = eb.checks.check_langevin_step(good_langevin)
    assert result and repr(result).startswith("✓"), repr(result)


def _ula(drift_sign=-1.0, drift_scale=1.0, noise_scale=lambda eta: math.sqrt(2 * eta)):
    def step(energy, x, step_size, noise):
        g = eb.energies.grad_energy(energy, x)
        return x + drift_sign * drift_scale * step_size * g + noise_scale(step_size) * noise
    return step


@pytest.mark.parametrize("fn, hint", [
    (_ula(drift_sign=1.0), "wrong way"),
    (_ula(noise_scale=math.sqrt), "scaled by √η"),
    (_ula(noise_scale=lambda eta: eta), "scaled by η"),
    (_ula(noise_scale=lambda eta: 2 * eta), "scaled by 2η"),
    (_ula(noise_scale=lambda eta: 1.0), "scaled by 1"),
    (_ula(noise_scale=lambda eta: 0.0), "noise is missing"),
    (_ula(drift_scale=0.5, noise_scale=math.sqrt), "½η∇E"),
    (lambda e, x, eta, xi: (x - eta * eb.energies.grad_energy(e, x))[:, 0], "shape (n, d)"),
])
def test_langevin_checker_names_the_mistake(fn, hint):
    result = eb.checks.check_langevin_step(fn)
    assert not result and hint in repr(result), repr(result)


def test_langevin_checker_is_deterministic_given_the_noise():
    # the same student function is judged the same way twice: the checker draws no fresh noise
    assert repr(eb.checks.check_langevin_step(good_langevin)) == repr(eb.checks.check_langevin_step(good_langevin))
    assert repr(eb.checks.check_mh_accept(good_mh)) == repr(eb.checks.check_mh_accept(good_mh))


def good_mala(energy, x, step_size, noise, u):
    def log_q(b, a, grad_a):                       # log q(b | a) up to a constant
        return -(b - a + step_size * grad_a).square().sum(1) / (4 * step_size)

    gx = eb.energies.grad_energy(energy, x)
    y = x - step_size * gx + math.sqrt(2 * step_size) * noise
    gy = eb.energies.grad_energy(energy, y)
    log_alpha = (energy(x) - energy(y) + log_q(x, y, gy) - log_q(y, x, gx)).clamp(max=0.0)
    return torch.where((torch.log(u) < log_alpha)[:, None], y, x)


def mala_without_correction(energy, x, step_size, noise, u):
    y = good_langevin(energy, x, step_size, noise)
    return torch.where((torch.log(u) < (energy(x) - energy(y)).clamp(max=0.0))[:, None], y, x)


def test_mala_checker_passes_a_correct_solution():
    assert eb.checks.check_mala_step(good_mala)


@pytest.mark.parametrize("fn, hint", [
    (mala_without_correction, "proposal correction is missing"),
    (lambda e, x, s, n, u: good_langevin(e, x, s, n), "that is ULA"),
])
def test_mala_checker_names_the_mistake(fn, hint):
    result = eb.checks.check_mala_step(fn)
    assert not result and hint in repr(result), repr(result)


def test_the_missing_correction_biases_the_chain():
    # what the hint claims: on E = x²/2 with η = 1, MALA without the proposal ratio has
    # stationary variance 2/3, not 1 (Monte Carlo standard error ≈ 0.003 here)
    gen, quad = eb.make_generator(5), lambda x: 0.5 * x.square().sum(1)
    variances = {}
    for name, fn in [("with", good_mala), ("without", mala_without_correction)]:
        x, kept = torch.randn(20_000, 1, generator=gen), []
        for t in range(150):
            x = fn(quad, x, 1.0, torch.randn(x.shape, generator=gen), torch.rand(x.shape[0], generator=gen))
            kept.append(x) if t >= 50 else None
        variances[name] = torch.stack(kept).var().item()
    assert abs(variances["with"] - 1) < 0.03 and abs(variances["without"] - 2 / 3) < 0.03, variances


def test_a_verdict_reads_in_lines_that_fit_a_notebook_output():
    verdict = eb.checks.check_mala_step(mala_without_correction)
    text = str(verdict)
    assert max(len(line) for line in text.splitlines()) <= 75
    assert text.split() == repr(verdict).split()            # only the line breaks differ
