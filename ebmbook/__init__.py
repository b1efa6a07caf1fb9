"""ebmbook: the small PyTorch package behind the executable textbook of energy-based models.

One concept per module, in the direction of the data flow (no module imports a later one)::

    device         pick_device(), make_generator()
    data           2-D toy data (and their default parameters), 8x8 digits; no downloads
    energies       the energy contract, gradients, analytic and exact toy energies
    nets           learnable energies (MLP, conv) and their initialization
    samplers       ChainState, pure transition steps, the chain driver
    tempering      annealed Langevin and parallel tempering, built on the steps
    diagnostics    acceptance, autocorrelation, ESS, split-R̂, mode occupancy
    buffers        chain starts: the replay buffer, persistent chains
    losses         training objectives: contrastive divergence, the KL and entropy terms
    score_matching training without model samples: exact, sliced and denoising score matching, NCE
    training       the contrastive-divergence training loop with divergence detection
    grid           exact normalization on 1-D/2-D grids: log Z, density, KL, NLL, entropy
    plotting       Axes-in / Axes-out figures
    checks         homework checkers: compare() in checks/compare.py, one file per chapter

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

from . import (buffers, checks, data, device, diagnostics, energies, grid, losses, nets, plotting, samplers,
               score_matching, tempering, training)
from .device import make_generator, pick_device

__version__ = "0.1.0"

__all__ = ["device", "data", "energies", "nets", "samplers", "tempering", "diagnostics", "buffers", "losses",
           "score_matching", "training", "grid", "plotting", "checks", "pick_device", "make_generator"]
