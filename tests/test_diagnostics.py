"""Diagnostics: ESS and autocorrelation against AR(1) closed forms, split-R̂ on stuck and mixed
chains, acceptance rates, mode occupancy, and contracts."""

import functools
import math

import pytest
import torch

import ebmbook as eb
import ebmbook.diagnostics  # noqa: F401  (eb.diagnostics before the package imports it)

D = eb.diagnostics

MODES = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])


def four_modes(x):
    """Four equal Gaussians (std 0.4) at the corners of a square: barriers of about 28 nats."""
    return eb.energies.gaussian_mixture(x, MODES, 0.4)


def ar1(phi, n_steps, n_chains, generator):
    """x_t = φ x_{t−1} + √(1 − φ²) ε_t from the stationary N(0, 1)."""
    noise = torch.randn(n_steps, n_chains, generator=generator, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[0] = noise[0]
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + math.sqrt(1 - phi**2) * noise[t]
    return x


# ----------------------------------------------------------------------- ESS and autocorrelation

@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ess_of_ar1_matches_the_closed_form(phi):
    # ESS = nT(1 − φ)/(1 + φ) for AR(1); with 64 chains of 4,000 steps the estimator is within a
    # few percent (its relative spread here is about 1.5 %); tolerance 6 %.
    x = ar1(phi, 4000, 64, eb.make_generator(35))
    want = x.numel() * (1 - phi) / (1 + phi)
    for split in (True, False):
        got = float(D.effective_sample_size(x, split=split))
        assert abs(got / want - 1) < 0.06, (phi, split, got, want)
    rho = D.autocorrelation(x, max_lag=3).mean(1)
    torch.testing.assert_close(rho, torch.tensor([phi**k for k in range(4)], dtype=torch.float64), atol=0.02, rtol=0)


def test_ess_is_vectorized_and_sees_stuck_chains():
    gen = eb.make_generator(36)
    x = torch.stack([ar1(0.0, 1000, 32, gen), ar1(0.8, 1000, 32, gen)], dim=2)   # (T, n, 2)
    ess = D.effective_sample_size(x)
    assert ess.shape == (2,) and ess[0] > 3 * ess[1]
    # chains that each mix well but sit in different modes carry little information together
    offsets = torch.tensor([-3.0, 3.0], dtype=torch.float64).repeat(16)            # (32,)
    stuck = ar1(0.0, 1000, 32, gen) + offsets
    assert D.effective_sample_size(stuck) < 0.01 * stuck.numel()
    assert D.effective_sample_size(stuck[:, :1]) > 0.5 * 1000                      # one chain looks fine


def test_autocorrelation_keeps_the_trailing_shape():
    x = ar1(0.5, 500, 8, eb.make_generator(70)).float()[..., None].expand(500, 8, 3)   # (T, n, d)
    rho = D.autocorrelation(x, max_lag=10)
    assert rho.shape == (11, 8, 3) and rho.dtype == torch.float32
    torch.testing.assert_close(rho[0], torch.ones(8, 3))


# ----------------------------------------------------------------------- split-R̂

def test_split_rhat_matches_its_formula():
    # R̂ = √(((N − 1)/N · W + B/N) / W) over the 2n half-chains, written out with explicit loops
    trace = torch.randn(41, 3, generator=eb.make_generator(71), dtype=torch.float64).cumsum(0)   # (T, n)
    halves = [trace[:20, j] for j in range(3)] + [trace[21:, j] for j in range(3)]   # odd T: the middle is dropped
    n_t = 20
    within = sum(float(h.var()) for h in halves) / len(halves)
    means = torch.stack([h.mean() for h in halves])
    var_plus = (n_t - 1) / n_t * within + float(means.var())
    assert float(D.split_rhat(trace)) == pytest.approx(math.sqrt(var_plus / within), rel=1e-12)


def test_split_rhat_is_one_for_mixed_chains_and_large_for_stuck_ones():
    gen = eb.make_generator(72)
    mixed = ar1(0.5, 2000, 16, gen)                                       # (T, n)
    # for independent well-mixed chains R̂ − 1 is of order 1/(m·N) here, far below 0.01
    assert abs(float(D.split_rhat(mixed)) - 1) < 0.005
    # chains that mix within a mode but sit in modes 6 apart: R̂ ≈ √(1 + 3²) ≈ 3.2
    stuck = mixed + torch.tensor([-3.0, 3.0], dtype=torch.float64).repeat(8)
    assert float(D.split_rhat(stuck)) > 3.0
    # one chain that drifts: splitting it in halves exposes the drift
    drift = mixed[:, :1] + torch.linspace(0, 4, 2000, dtype=torch.float64)[:, None]
    assert float(D.split_rhat(drift)) > 1.5
    # vectorized over trailing dimensions
    both = torch.stack([mixed, stuck], dim=2)                             # (T, n, 2)
    rhat = D.split_rhat(both)
    assert rhat.shape == (2,) and rhat[0] < 1.005 and rhat[1] > 3.0


def test_split_rhat_of_a_sampler_stuck_in_different_modes():
    # 32 MALA chains, 8 started in each of the four modes: each mixes within its mode (barriers of
    # about 28 nats), so R̂ of the position is large; the same sampler on one mode gives R̂ ≈ 1
    gen = eb.make_generator(73)
    starts = MODES.repeat_interleave(8, 0) + 0.4 * torch.randn(32, 2, generator=gen)
    step = functools.partial(eb.samplers.mala_step, four_modes, step_size=0.05, generator=gen)
    stuck = eb.samplers.run_chain(step, starts, n_steps=600, burn_in=100).trajectory    # (T, n, 2)
    assert (D.split_rhat(stuck) > 2).all()
    one_mode = eb.samplers.run_chain(step, MODES[0] + 0.4 * torch.randn(32, 2, generator=gen),
                                     n_steps=600, burn_in=100).trajectory
    assert (D.split_rhat(one_mode) < 1.05).all()


# ----------------------------------------------------------------------- acceptance and occupancy

def test_acceptance_rate_of_flags_and_of_a_list():
    flags = torch.tensor([[True, False], [True, True]])
    assert torch.equal(D.acceptance_rate(flags), torch.tensor([1.0, 0.5]))
    assert torch.equal(D.acceptance_rate(list(flags)), torch.tensor([1.0, 0.5]))


def test_mode_occupancy_of_samples_and_trajectories():
    x = torch.cat([MODES[0] + 0.1 * torch.randn(30, 2, generator=eb.make_generator(74)),
                   MODES[2] + 0.1 * torch.randn(10, 2, generator=eb.make_generator(75))])   # (40, 2)
    occupancy = D.mode_occupancy(x, MODES)
    torch.testing.assert_close(occupancy, torch.tensor([0.75, 0.0, 0.25, 0.0], dtype=torch.float64))
    torch.testing.assert_close(D.mode_occupancy(x.view(4, 10, 2), MODES), occupancy)   # (T, n, d)


# ----------------------------------------------------------------------- bad inputs

BAD = [
    ("ESS of too short a trace", lambda: D.effective_sample_size(torch.zeros(5, 3)), ValueError, "at least 4"),
    ("ESS of a single series", lambda: D.effective_sample_size(torch.zeros(100)), ValueError, "trace[:, None]"),
    ("R̂ of too short a trace", lambda: D.split_rhat(torch.zeros(7, 3)), ValueError, "at least 4"),
    ("R̂ of a list", lambda: D.split_rhat([[0.0, 1.0]]), ValueError, "(T, n, ...)"),
    ("autocorrelation at a lag past the end", lambda: D.autocorrelation(torch.zeros(10, 2), max_lag=10), ValueError, "max_lag"),
    ("autocorrelation at a negative lag", lambda: D.autocorrelation(torch.zeros(10, 2), max_lag=-1), ValueError, "max_lag"),
    ("autocorrelation of one step", lambda: D.autocorrelation(torch.zeros(1, 2)), ValueError, "T ≥ 2"),
    ("acceptance of a vector", lambda: D.acceptance_rate(torch.ones(5, dtype=torch.bool)), ValueError, "(T, n)"),
    ("acceptance of an empty list", lambda: D.acceptance_rate([]), ValueError, "(T, n)"),
    ("ESS of an integer trace", lambda: D.effective_sample_size(torch.zeros(10, 4, dtype=torch.long)), TypeError, "floating point"),
    ("R̂ of an empty trace", lambda: D.split_rhat(torch.zeros(10, 0)), ValueError, "empty"),
    ("autocorrelation of an integer trace", lambda: D.autocorrelation(torch.zeros(10, 4, dtype=torch.long)), TypeError, "floating point"),
    ("occupancy with means of another dimension", lambda: D.mode_occupancy(torch.zeros(5, 2), torch.zeros(3, 3)), ValueError, "share d"),
    ("occupancy of an empty batch", lambda: D.mode_occupancy(torch.zeros(0, 2), MODES), ValueError, "empty"),
    ("occupancy of integer samples", lambda: D.mode_occupancy(torch.zeros(5, 2, dtype=torch.long), MODES), TypeError, "float"),
]


@pytest.mark.parametrize("what, call, error, fix", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(what, call, error, fix):
    with pytest.raises(error) as info:
        call()
    assert fix in str(info.value), f"{what}: message {str(info.value)!r} should mention {fix!r}"
