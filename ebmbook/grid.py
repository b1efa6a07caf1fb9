"""Exact normalization on 1-D and 2-D grids: the ground truth of the book.

Definitions used everywhere in the book:

* **Box and cells.** A grid covers the box [low₁, high₁] × … (d = 1 or 2) with n cells per
  dimension, of widths hₐ = (highₐ − lowₐ)/nₐ; the points are the cell centres.
* **Density on the box.** An energy defines the density p(x) = exp(−E(x)/T) / Z on the box and
  zero outside it, with Z = ∫_box exp(−E/T) dx computed by the midpoint rule,
  log Z ≈ logsumexp(−E(centres)/T) + log(h₁⋯h_d). For an energy whose mass lies well inside
  the box (all analytic energies here on the book's boxes) this is the ordinary Boltzmann
  density; for a learned energy that is not integrable on the whole plane, the box is part of
  the model's definition.
* **Bin masses.** Pᵢ = ∫_cellᵢ p dx, by the midpoint rule on ``refine``ᵈ sub-cells per cell.
* **KL of samples.** ``kl_from_samples`` compares the histogram q̂ of n samples (or of all
  T·n points of a trajectory) over the cells with the exact masses: KL(q̂ ‖ P) = Σᵢ q̂ᵢ log(q̂ᵢ/Pᵢ). It is in nats, and it is +inf when any
  sample falls outside the box (the model gives the outside zero mass): choose a box that
  holds both the target's mass and the sampler's reach.
* **Floor.** Even exact samples give KL(q̂ ‖ P) > 0 (about (occupied cells − 1)/(2n)).
  ``kl_floor`` measures the same statistic for n exact samples; quote it beside every KL.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ._contracts import count, floating, memory, points, positive
from .device import accurate_dtype, check_generator
from .energies import Energy, evaluate

__all__ = ["Grid", "make_grid", "energy_on_grid", "log_partition", "log_density", "density", "bin_masses",
           "kl_from_samples", "kl_floor", "KLTest", "kl_test", "sample_exact", "nll", "entropy"]

DEFAULT_CHUNK = 65536


class Grid(NamedTuple):
    """A regular grid of cell centres on a box in 1-D or 2-D; make it with :func:`make_grid`.

    Attributes:
        low: lower corner of the box, one float per dimension.
        high: upper corner of the box.
        axes: cell centres along each dimension, each of shape (nₐ,).
        points: all centres, shape (m, d) with m = n₁⋯n_d, in 'ij' (row-major) order.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    axes: tuple[Tensor, ...]
    points: Tensor

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.shape[0] for a in self.axes)

    @property
    def widths(self) -> tuple[float, ...]:
        return tuple((h - l) / n for l, h, n in zip(self.low, self.high, self.shape))

    @property
    def cell_volume(self) -> float:
        return math.prod(self.widths)


def _as_tuple(v, dim: int, name: str) -> tuple:
    v = (v,) * dim if isinstance(v, (int, float)) else tuple(v)
    if len(v) != dim:
        raise ValueError(f"{name} has {len(v)} entries but dim={dim}")
    return v


def make_grid(low: float | Sequence[float], high: float | Sequence[float], n: int | Sequence[int], *,
              dim: int | None = None, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> Grid:
    """A grid of n cells per dimension on the box [low, high]ᵈ, d = 1 or 2.

    Args:
        low, high: box corners: floats (the same for every dimension) or one per dimension.
        n: cells per dimension (an int, or one per dimension), each ≥ 2.
        dim: 1 or 2; may be left out when ``low`` or ``high`` is a sequence.
        device, dtype: where the centres live; a floating dtype.

    Returns:
        A :class:`Grid`.

    Raises:
        ValueError: a bad box or size, or a grid that would take more than 4 GiB.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    if dim is None:
        seqs = [v for v in (low, high, n) if not isinstance(v, (int, float))]
        if not seqs:
            raise ValueError("give dim=1 or dim=2 (or low/high as one value per dimension)")
        dim = len(seqs[0])
    if dim not in (1, 2):
        raise ValueError(f"grids are for d = 1 or 2, got dim={dim}: a grid needs n^d points, which is out of "
                         "reach beyond d = 3; estimate log Z by sampling instead (importance sampling, AIS)")
    low_t, high_t = _as_tuple(low, dim, "low"), _as_tuple(high, dim, "high")
    n_t = tuple(count(k, "n", minimum=2) for k in _as_tuple(n, dim, "n"))
    memory(math.prod(n_t) * dim, floating(dtype), f"a grid of {' × '.join(map(str, n_t))} cells")
    for l, h in zip(low_t, high_t):
        if not (math.isfinite(l) and math.isfinite(h) and l < h):
            raise ValueError(f"need finite low < high, got low={low!r}, high={high!r}")
    axes = tuple((l + (h - l) / k * (torch.arange(k, device=device, dtype=torch.float64) + 0.5)).to(dtype)
                 for l, h, k in zip(low_t, high_t, n_t))                  # centres, computed in float64
    mesh = torch.meshgrid(*axes, indexing="ij")
    points = torch.stack([m.reshape(-1) for m in mesh], dim=1)           # (m, d)
    return Grid(tuple(float(v) for v in low_t), tuple(float(v) for v in high_t), axes, points)


def energy_on_grid(energy: Energy, grid: Grid, *, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """E at every cell centre, evaluated in chunks; differentiable in the energy's parameters.

    Returns:
        Energies, shape (m,) with m = n₁⋯n_d.

    Raises:
        ValueError: the energy has the wrong output shape or a non-finite value on the grid.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    chunks = [evaluate(energy, pts) for pts in grid.points.split(count(chunk_size, "chunk_size"))]
    return torch.cat(chunks)                                              # (m,)


def _log_weights(energy, grid, temperature, chunk_size):
    positive(temperature, "temperature")
    e = energy_on_grid(energy, grid, chunk_size=chunk_size)
    return -e.to(accurate_dtype(e.device)) / temperature                 # (m,) log unnormalized p


def log_partition(energy: Energy, grid: Grid, *, temperature: float = 1.0,
                  chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """log Z(T) = log ∫_box exp(−E(x)/T) dx by the midpoint rule on the grid's cells.

    Differentiable: for a learned energy, ``log_partition(net, grid).backward()`` gives ∇θ log Z.
    Accumulated in float64 (float32 on mps).

    Args:
        energy: callable, (m, d) -> (m,).
        grid: from :func:`make_grid`.
        temperature: T > 0.
        chunk_size: points per forward pass, to bound memory.

    Returns:
        A 0-dim tensor.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    log_w = _log_weights(energy, grid, temperature, chunk_size)
    return torch.logsumexp(log_w, dim=0) + math.log(grid.cell_volume)


def log_density(energy: Energy, grid: Grid, *, temperature: float = 1.0,
                chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """log p(x) = −E(x)/T − log Z at the cell centres, shape ``grid.shape`` (no gradient).
    """
    with torch.no_grad():
        log_w = _log_weights(energy, grid, temperature, chunk_size)
        log_z = torch.logsumexp(log_w, dim=0) + math.log(grid.cell_volume)
    return (log_w - log_z).reshape(grid.shape)


def density(energy: Energy, grid: Grid, *, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """The normalized density p(x) at the cell centres, shape ``grid.shape``; Σ p · cell volume = 1.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    return log_density(energy, grid, temperature=temperature, chunk_size=chunk_size).exp()


def bin_masses(energy: Energy, grid: Grid, *, temperature: float = 1.0, refine: int = 4,
               chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """Exact probability of each cell, Pᵢ = ∫_cellᵢ p dx, shape ``grid.shape``, summing to 1.

    Each cell is split into ``refine``ᵈ sub-cells for the midpoint rule, so a coarse grid of
    bins (for histograms) still gets accurate masses.

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    refine = count(refine, "refine")
    fine = make_grid(grid.low, grid.high, tuple(k * refine for k in grid.shape),
                     device=grid.points.device, dtype=grid.points.dtype)
    p = density(energy, fine, temperature=temperature, chunk_size=chunk_size) * fine.cell_volume
    masses = p.reshape([v for k in grid.shape for v in (k, refine)]).sum(tuple(range(1, 2 * grid.dim, 2)))
    return masses / masses.sum()                                           # (n₁, refine, n₂, refine) -> (n₁, n₂)


def _cell_index(samples: Tensor, grid: Grid, name: str = "samples") -> tuple[Tensor, Tensor]:
    """Flat cell index of each sample and a mask of the samples inside the box."""
    points(samples, name, dim=grid.dim)
    low = torch.tensor(grid.low, dtype=torch.float64, device=samples.device)
    width = torch.tensor(grid.widths, dtype=torch.float64, device=samples.device)
    shape = torch.tensor(grid.shape, device=samples.device)
    ij = torch.floor((samples.detach().to(torch.float64) - low) / width).long()   # (n, d)
    inside = ((ij >= 0) & (ij < shape)).all(dim=1) & torch.isfinite(samples).all(dim=1)
    ij = ij[inside]
    flat = ij[:, 0] if grid.dim == 1 else ij[:, 0] * grid.shape[1] + ij[:, 1]
    return flat, inside


def _kl_from_counts(counts: Tensor, masses: Tensor) -> Tensor:
    """KL(q̂ ‖ P) = Σᵢ q̂ᵢ log(q̂ᵢ/Pᵢ) in nats, q̂ = counts / n, for counts and masses of one shape."""
    q, p = counts.reshape(-1).to(torch.float64), masses.reshape(-1).to(torch.float64)
    q = q / q.sum()
    used = q > 0
    return (q[used] * (q[used].log() - p[used].log())).sum()


def kl_from_samples(samples: Tensor, energy: Energy, grid: Grid, *, temperature: float = 1.0,
                    refine: int = 4) -> Tensor:
    """KL(histogram of samples ‖ exact cell masses of exp(−E/T)) in nats; see the module's definitions.

    Quote :func:`kl_floor` for the same number of samples beside it.

    Args:
        samples: shape (n, d), or a trajectory (T, n, d) whose T·n points are pooled.
        energy: the target energy.
        grid: the bins (a coarse grid: 30–60 cells per dimension keeps the floor small).
        temperature: T > 0.
        refine: sub-cells per cell and dimension for the exact masses.

    Returns:
        A 0-dim float64 tensor, +inf if a sample lies outside the box.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    if isinstance(samples, Tensor) and samples.dim() == 3:
        samples = samples.reshape(-1, samples.shape[-1])                   # (T·n, d)
    flat, inside = _cell_index(samples, grid)
    masses = bin_masses(energy, grid, temperature=temperature, refine=refine)
    if not inside.all():
        return torch.tensor(math.inf, dtype=torch.float64)
    return _kl_from_counts(torch.bincount(flat, minlength=masses.numel()), masses)


def kl_floor(energy: Energy, grid: Grid, n_samples: int, *, generator: torch.Generator,
             temperature: float = 1.0, refine: int = 4, n_repeats: int = 10) -> Tensor:
    """The KL that ``n_samples`` exact samples reach: mean over ``n_repeats`` draws of the counts.

    A sampler whose :func:`kl_from_samples` is at this floor is indistinguishable from exact
    sampling at this resolution and sample size; :func:`kl_test` says how close is close.

    Returns:
        A 0-dim float64 tensor.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    masses = bin_masses(energy, grid, temperature=temperature, refine=refine)
    return _floor_draws(masses, n_samples, generator, n_repeats).mean()


def _floor_draws(masses: Tensor, n_samples: int, generator: torch.Generator, n_repeats: int) -> Tensor:
    """The KLs of ``n_repeats`` sets of ``n_samples`` exact draws from the cell masses, (n_repeats,) float64."""
    memory(count(n_samples, "n_samples"), torch.int64, f"{n_samples} samples")
    count(n_repeats, "n_repeats")
    check_generator(generator, masses.device)
    flat = masses.reshape(-1).to(torch.float64)
    kls = []
    for _ in range(n_repeats):
        idx = torch.multinomial(flat, n_samples, replacement=True, generator=generator)
        counts = torch.bincount(idx, minlength=flat.numel()).reshape(masses.shape)
        kls.append(_kl_from_counts(counts, masses))
    return torch.stack(kls)


class KLTest(NamedTuple):
    """What :func:`kl_test` returns; truthy when the samples pass.

    Attributes:
        kl: the samples' KL, :func:`kl_from_samples`.
        floor: mean KL of as many exact samples (the floor), over the repeats.
        floor_std: standard deviation of the exact samples' KL over the repeats.
        z: (kl − floor) / floor_std, the excess in standard deviations of exact sampling.
        passed: z ≤ the threshold.
    """

    kl: float
    floor: float
    floor_std: float
    z: float
    passed: bool

    def __bool__(self) -> bool:
        return self.passed


def kl_test(samples: Tensor, energy: Energy, grid: Grid, *, generator: torch.Generator, threshold: float = 4.0,
            n_repeats: int = 20, temperature: float = 1.0) -> KLTest:
    """Are independent samples as close to exp(−E/T) as exact samples are, on the grid's cells?

        z = (KL(samples) − mean KL(exact)) / sd KL(exact),   passed if z ≤ threshold

    The null distribution is that of the KL of ``len(samples)`` exact samples, drawn
    ``n_repeats`` times. Use it for the final states of independent chains (one state per
    chain): states along one chain are correlated, and their KL lies above the floor even for
    an exact sampler. A sampler with a bias larger than the histogram's noise fails.

    Args:
        samples: shape (n, d), one state per independent chain.
        energy: the target's energy; grid: the cells (as in :func:`kl_from_samples`).
        generator: source of the exact samples' counts, on the grid's device.
        threshold: the largest z that passes (4: a false alarm well under one in a thousand).
        n_repeats: draws of exact samples for the floor and its spread, ≥ 2.
        temperature: T of the target exp(−E/T).

    Returns:
        A :class:`KLTest`, truthy when the samples pass.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    samples = points(samples, "samples")
    if count(n_repeats, "n_repeats") < 2:
        raise ValueError("n_repeats must be at least 2 to estimate the spread of the floor")
    masses = bin_masses(energy, grid, temperature=temperature)            # once, for both
    flat, inside = _cell_index(samples, grid)
    counts = torch.bincount(flat, minlength=masses.numel())
    kl = _kl_from_counts(counts, masses).item() if inside.all() else math.inf
    draws = _floor_draws(masses, samples.shape[0], generator, n_repeats)
    floor, std = draws.mean().item(), draws.std().item()
    z = (kl - floor) / std
    return KLTest(kl, floor, std, z, z <= positive(threshold, "threshold"))


def sample_exact(energy: Energy, grid: Grid, n: int, *, generator: torch.Generator,
                 temperature: float = 1.0) -> Tensor:
    """n samples of the grid density: a cell drawn by its mass, then a uniform point inside it.

    Exact for the piecewise-constant density on the cells, so use a fine grid.

    Returns:
        Samples, shape (n, d), on the grid's device and dtype.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    memory(count(n, "n") * grid.dim, grid.points.dtype, f"{n} samples")
    pts = grid.points
    check_generator(generator, pts.device)
    masses = (density(energy, grid, temperature=temperature).reshape(-1) * grid.cell_volume).to(torch.float64)
    idx = torch.multinomial(masses, n, replacement=True, generator=generator)
    width = torch.tensor(grid.widths, dtype=pts.dtype, device=pts.device)
    jitter = torch.rand((n, grid.dim), generator=generator, device=pts.device, dtype=pts.dtype) - 0.5
    return pts[idx] + jitter * width                                     # (n, d)


def nll(energy: Energy, x: Tensor, grid: Grid, *, temperature: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """Exact mean negative log-likelihood of data under the density on the grid's box, in nats:

        NLL = mean_x [E(x)/T] + log Z(T)

    Differentiable in the energy's parameters. Its minimum over models is the data entropy,
    so NLL − H is KL(p_data ‖ p_model).

    Args:
        energy: callable, (n, d) -> (n,).
        x: data, shape (n, d), all inside the box.
        grid: defines the box and the quadrature.
        temperature: T > 0.

    Returns:
        A 0-dim tensor.

    Raises:
        ValueError: some points lie outside the box (their density is zero there).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    _, inside = _cell_index(x, grid, "x")
    if not inside.all():
        raise ValueError(f"{int((~inside).sum())} of {x.shape[0]} points lie outside the grid box {grid.low}–"
                         f"{grid.high}, where the model's density is zero; enlarge the box")
    e = torch.cat([evaluate(energy, c) for c in x.split(count(chunk_size, "chunk_size"))])
    log_z = log_partition(energy, grid, temperature=temperature, chunk_size=chunk_size)
    return e.to(log_z.dtype).mean() / temperature + log_z


def entropy(energy: Energy, grid: Grid, *, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """Differential entropy H = −∫ p log p of the density on the box, in nats (midpoint rule).

    For a normalized toy energy this is the entropy of its data, the floor of any model's NLL.

    Returns:
        A 0-dim float64 tensor.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    log_p = log_density(energy, grid, temperature=temperature, chunk_size=chunk_size)
    return -(log_p.exp() * log_p).sum() * grid.cell_volume
