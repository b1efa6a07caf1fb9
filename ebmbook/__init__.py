"""ebmbook: the small PyTorch package behind the executable textbook of energy-based models.

One concept per module::

    device      pick_device(), make_generator()
    energies    the energy contract, analytic and learnable energies, gradients
    data        2-D toy data and 8x8 digits, no downloads
    grid        exact normalization on 1-D/2-D grids: log Z, density, KL, NLL, entropy
    plotting    Axes-in / Axes-out figures
    samplers    transition steps, the chain driver, sampler diagnostics
    losses      training objectives: contrastive divergence, the KL and entropy terms
    buffers     the replay buffer of short-run chains
    training    the contrastive-divergence training loop with divergence detection
    checks      homework checkers

Notation (math ↔ code):

    ============================  ==========================
    E(x)                          ``energy``
    ∇ₓE                           ``grad_energy``
    s(x) = −∇ₓE                   ``score``
    log Z                         ``log_partition``
    F = −T log Z                  free energy
    η                             ``step_size``
    T (temperature)               ``temperature``
    x⁺ / x⁻                       ``x_data`` / ``x_model``
    n, d                          ``n_samples``/``n_chains``, ``dim``
    ============================  ==========================

The sign convention: lower energy is more probable, p(x) = exp(−E(x)/T) / Z.
"""

from . import buffers, checks, data, device, energies, grid, losses, plotting, samplers, training
from .device import make_generator, pick_device

__version__ = "0.1.0"

__all__ = ["buffers", "checks", "data", "device", "energies", "grid", "losses", "plotting", "samplers", "training",
           "pick_device", "make_generator"]
