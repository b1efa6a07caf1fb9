"""How well chains sample: acceptance, autocorrelation, effective sample size, split-R̂, mode occupancy.

All of them read what :func:`ebmbook.samplers.run_chain` returns: a trace of shape (T, n, ...)
(T kept steps of n chains; positions (T, n, d) or energies (T, n)) or ``info.accepted`` flags.
ESS and R̂ pool the chains as Stan and ArviZ do, so chains stuck in different modes show up as a
small ESS and an R̂ well above 1 even when each chain alone looks well mixed.

See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ._contracts import count, points

__all__ = ["acceptance_rate", "autocorrelation", "effective_sample_size", "split_rhat", "mode_occupancy"]


def acceptance_rate(accepted: Tensor | Sequence[Tensor]) -> Tensor:
    """Fraction of accepted proposals per chain.

        rate_i = (1/T) Σ_t accepted_{t,i}

    Args:
        accepted: bool flags of shape (T, n), or a list of T tensors of shape (n,) (``info.accepted``).

    Returns:
        Rates, shape (n,), as float; ``.mean()`` is the overall rate.
    """
    if not isinstance(accepted, Tensor):
        accepted = torch.stack(list(accepted)) if len(accepted) else torch.zeros(0, 0)
    if accepted.dim() != 2 or accepted.numel() == 0:
        raise ValueError(f"accepted must have shape (T, n) with T, n ≥ 1, got {tuple(accepted.shape)}")
    return accepted.float().mean(0)


def _autocovariance(x: Tensor) -> Tensor:
    """Biased autocovariance along dim 0 (divided by T) by FFT, same shape as x."""
    n_t = x.shape[0]
    centred = x - x.mean(0)
    size = 2 ** math.ceil(math.log2(2 * n_t - 1))                # zero padding: no circular wrap
    f = torch.fft.rfft(centred, n=size, dim=0)
    return torch.fft.irfft(f.real.square() + f.imag.square(), n=size, dim=0)[:n_t] / n_t


def autocorrelation(trace: Tensor, max_lag: int | None = None) -> Tensor:
    """Autocorrelation of each series along time, by FFT.

        ρ̂_τ = Σ_{t<T−τ} (x_t − x̄)(x_{t+τ} − x̄) / Σ_t (x_t − x̄)²

    Args:
        trace: shape (T, ...), e.g. (T, n) energies or (T, n, d) positions.
        max_lag: largest lag τ returned (default T − 1).

    Returns:
        ρ̂ for τ = 0 … max_lag, shape (max_lag + 1, ...); ρ̂_0 = 1 (NaN for a constant series).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if not isinstance(trace, Tensor) or trace.dim() < 1 or trace.shape[0] < 2:
        raise ValueError("trace must be a tensor of shape (T, ...) with T ≥ 2")
    if not trace.is_floating_point():
        raise TypeError(f"trace must be floating point, got {trace.dtype}; use trace.float()")
    max_lag = trace.shape[0] - 1 if max_lag is None else count(max_lag, "max_lag", 0)
    if max_lag >= trace.shape[0]:
        raise ValueError(f"max_lag must be < T = {trace.shape[0]}, got {max_lag}")
    acov = _autocovariance(trace.detach().to(torch.float64))
    return (acov[: max_lag + 1] / acov[0]).to(trace.dtype)


def _chains(trace: Tensor, split: bool) -> Tensor:
    """The trace as (N, m, D) float64 chains, each chain cut into halves first when split."""
    if not isinstance(trace, Tensor) or trace.dim() < 2 or trace.numel() == 0:
        raise ValueError("trace must be a non-empty tensor of shape (T, n, ...) with one column per chain; "
                         "for one chain use trace[:, None]")
    points(trace, "trace")                                                 # non-empty, floating point
    x = trace.detach().to(torch.float64).reshape(trace.shape[0], trace.shape[1], -1)      # (T, n, D)
    if split:
        half = x.shape[0] // 2
        x = torch.cat([x[:half], x[x.shape[0] - half:]], dim=1)            # (T/2, 2n, D)
    if x.shape[0] < 4:
        raise ValueError(f"the trace needs at least 4 steps per chain{' after splitting' if split else ''}, "
                         f"got {x.shape[0]}")
    return x


def effective_sample_size(trace: Tensor, *, split: bool = True) -> Tensor:
    """Effective sample size of all chains together (the multi-chain estimator of Stan and ArviZ).

        ESS = m·N / τ,   τ = −1 + 2 Σ_k P̃_k,   P_k = ρ̂_{2k} + ρ̂_{2k+1}

    ρ̂_t combines the chains' autocovariances with the between-chain variance, so chains stuck in
    different modes give a small ESS; the sum stops at the first negative P_k and P̃ is P made
    monotone (Geyer's initial monotone sequence). Vectorized over chains and dimensions.

    Args:
        trace: shape (T, n, ...): T kept steps of n chains; each trailing entry (a coordinate,
            or the energy with trace (T, n)) gets its own ESS.
        split: split every chain into halves first (m = 2n, N = T // 2), which also
            catches chains that drift.

    Returns:
        ESS, shape trace.shape[2:], in float64; at most m·N·log₁₀(m·N).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    x = _chains(trace, split)                                              # (N, m, D)
    n_t, m = x.shape[0], x.shape[1]
    acov = _autocovariance(x)                                              # (N, m, D)
    within = acov[0].mean(0) * n_t / (n_t - 1)                             # (D,) W
    var_plus = within * (n_t - 1) / n_t
    if m > 1:
        var_plus = var_plus + x.mean(0).var(0)                             # + B/N
    rho = 1 - (within - acov.mean(1)) / var_plus                           # (N, D)
    rho[0] = 1
    pairs = rho[: 2 * (n_t // 2)].reshape(n_t // 2, 2, -1).sum(1)          # (N/2, D) P_k
    positive = torch.cumprod((pairs > 0).to(torch.float64), dim=0)         # 1 until the first P_k ≤ 0
    monotone = torch.cummin(pairs, dim=0).values
    tau = -1 + 2 * (monotone * positive).sum(0)
    total = m * n_t
    tau = torch.clamp(tau, min=1 / math.log10(total))
    return (total / tau).reshape(trace.shape[2:])


def split_rhat(trace: Tensor) -> Tensor:
    """Split-R̂: how much the spread of all chains exceeds the spread within each (1 when they agree).

        R̂ = √(var⁺ / W),   var⁺ = (N − 1)/N · W + B/N

    Every chain is cut into halves (m = 2n chains of N = T // 2 steps); W is the mean of their
    variances and B/N the variance of their means. This is the split-R̂ of Gelman et al. (BDA3),
    as in Vehtari et al. (2021) without their rank normalization and folding, so it assumes
    finite variances. Values above about 1.01 say the chains have not mixed: they sit in
    different modes, or drift.

    Args:
        trace: shape (T, n, ...): T ≥ 8 kept steps of n chains; each trailing entry gets its own R̂.

    Returns:
        R̂, shape trace.shape[2:], in float64 (NaN for a constant series).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    x = _chains(trace, split=True)                                         # (N, m, D)
    n_t = x.shape[0]
    within = x.var(0).mean(0)                                              # (D,) W
    var_plus = within * (n_t - 1) / n_t + x.mean(0).var(0)                 # (D,)
    return (var_plus / within).sqrt().reshape(trace.shape[2:])


def mode_occupancy(samples: Tensor, means: Tensor) -> Tensor:
    """Fraction of samples nearest to each mode.

        occupancy_k = #{i : argmin_j ‖xᵢ − μ_j‖ = k} / n

    Args:
        samples: shape (n, d), or a trajectory (T, n, d) (all kept states count).
        means: the modes μ_k, shape (K, d).

    Returns:
        Fractions, shape (K,), summing to 1; compare with the exact mode masses (1/K for equal ones).

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    samples = points(samples, "samples")
    means = torch.as_tensor(means, device=samples.device, dtype=samples.dtype)
    if means.dim() != 2 or samples.shape[-1] != means.shape[1] or samples.dim() > 3:
        raise ValueError(f"samples (n, d) or (T, n, d) and means (K, d) must share d; got "
                         f"{tuple(samples.shape)} and {tuple(means.shape)}")
    flat = samples.reshape(-1, means.shape[1])                             # (T·n, d)
    nearest = torch.cdist(flat, means).argmin(1)                           # (T·n,)
    return torch.bincount(nearest, minlength=means.shape[0]).to(torch.float64) / flat.shape[0]
