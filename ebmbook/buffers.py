"""Chain starts that live across training iterations: a replay buffer, persistent chains.

Each training iteration asks its starts for n starting points with ``sample(n, generator=...)``
and, after the sampler has run, gives the end points back with ``push(x)``:

* :class:`ReplayBuffer` (short-run training, Du & Mordatch 2019): most chains start at the end
  points of earlier chains, drawn at random from the buffer, and a small fraction (5% by
  default) from fresh uniform noise, so that new modes can still be found;
* :class:`PersistentChains` (persistent CD, Tieleman 2008): a buffer without noise that gives
  back every chain where it stopped, so each chain simply continues;
* :class:`MemberStarts`: one of the above per member of an :class:`ebmbook.nets.MLPEnsemble`,
  so that each member's chains continue only its own.

CD-k needs no object: its chains start at the data batch (``starts=None`` in
:func:`ebmbook.training.train`). The loop over sampler steps still lives in
:func:`ebmbook.samplers.run_chain`.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ._contracts import count, fraction, memory, number, points
from .device import check_generator

__all__ = ["ReplayBuffer", "PersistentChains", "MemberStarts"]


class ReplayBuffer:
    """A fixed-capacity store of chain end points with a noise-reinitialization fraction.

        sample(n):  round(ρ n) rows of U[low, high]^d noise, the rest drawn uniformly from the buffer
        push(x):    write x over the oldest entries (first in, first out)

    While the buffer is empty every row is noise.

    Args:
        capacity: the most points kept, ≥ 1.
        event_shape: the shape of one point, e.g. (2,) or (1, 8, 8).
        low, high: the box of the uniform noise (low < high).
        reinit_fraction: ρ in [0, 1], the fraction of each sample drawn fresh from noise.
        device, dtype: where and how the points are stored.

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """

    def __init__(self, capacity: int, event_shape: Sequence[int], *, low: float = -1.0, high: float = 1.0,
                 reinit_fraction: float = 0.05, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.capacity = count(capacity, "capacity")
        self.event_shape = tuple(event_shape)
        if not self.event_shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                                       for s in self.event_shape):
            raise ValueError(f"event_shape must be a non-empty tuple of positive ints, got {event_shape!r}")
        self.low = number(low, "low", low=-math.inf)
        self.high = number(high, "high", low=self.low, advice="the noise box needs low < high")
        self.reinit_fraction = fraction(reinit_fraction, "reinit_fraction")
        self.device, self.dtype = torch.device(device), dtype
        memory(capacity * math.prod(self.event_shape), dtype, "the buffer")
        # (capacity, *event_shape)
        self.data = torch.empty((capacity, *self.event_shape), device=self.device, dtype=dtype)
        self.size = 0                                # filled rows
        self._next = 0                               # the row the next push writes first

    def __len__(self) -> int:
        return self.size

    def noise(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n points of uniform noise on the box, shape (n, *event_shape)."""
        check_generator(generator, self.device)
        u = torch.rand((n, *self.event_shape), generator=generator, device=self.device, dtype=self.dtype)
        return self.low + (self.high - self.low) * u

    def sample(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Starting points for n chains: the first round(ρ n) rows are noise, the rest from the buffer.

        Draws the noise ``rand`` first, then the buffer indices (with replacement).

        Args:
            n: number of chains, ≥ 1.
            generator: source of the noise and of the indices, on the buffer's device.

        Returns:
            Points, shape (n, *event_shape), a copy (changing them leaves the buffer alone).
        """
        n = count(n, "n")
        check_generator(generator, self.device)
        n_noise = n if self.size == 0 else round(self.reinit_fraction * n)
        x = self.noise(n_noise, generator=generator)                      # (n_noise, *event_shape)
        if n_noise == n:
            return x
        idx = torch.randint(self.size, (n - n_noise,), generator=generator, device=self.device)
        return torch.cat([x, self.data[idx]])                             # (n, *event_shape)

    def push(self, x: Tensor) -> None:
        """Store the points x (detached), overwriting the oldest entries when full.

        Args:
            x: points, shape (m, *event_shape), on the buffer's device; if m exceeds the
                capacity only the last ``capacity`` rows are kept.

        Raises:
            FloatingPointError: x holds inf or NaN (the chains diverged).
        """
        points(x, "x")
        if tuple(x.shape[1:]) != self.event_shape or x.device != self.device:
            raise ValueError(f"x must have shape (m, *{self.event_shape}) on {self.device}, got "
                             f"{tuple(x.shape)} on {x.device}; make the buffer with x's event shape and device")
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError("refusing to store non-finite points: the chains diverged; "
                                     "use a smaller sampler step_size")
        x = x.detach()[-self.capacity:].to(self.dtype)
        rows = (self._next + torch.arange(x.shape[0], device=self.device)) % self.capacity
        self.data[rows] = x
        self._next = (self._next + x.shape[0]) % self.capacity
        self.size = min(self.capacity, self.size + x.shape[0])


class PersistentChains(ReplayBuffer):
    """Persistent chains: a buffer without noise that gives back every chain where it stopped.

        sample(n) = (x₁, …, xₙ), the n chains in order,   push(x): the chains now stand at x

    Args:
        x0: where the n chains start, shape (n, *event_shape), e.g. n random data points
            ``x_data[torch.randint(len(x_data), (n,), generator=gen)]`` (persistent CD).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """

    def __init__(self, x0: Tensor):
        points(x0, "x0")
        super().__init__(x0.shape[0], x0.shape[1:], reinit_fraction=0.0, device=x0.device, dtype=x0.dtype)
        self.push(x0)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """All n chains, shape (n, *event_shape), a copy; draws nothing from ``generator``."""
        if n != self.capacity:
            raise ValueError(f"these are {self.capacity} persistent chains, so n must be {self.capacity}, "
                             f"got {n!r}; make PersistentChains with {n!r} starting points for {n!r} chains")
        return self.data.clone()

    def push(self, x: Tensor) -> None:
        """Move the chains to x, shape (n, *event_shape): one row per chain, in order."""
        if isinstance(x, Tensor) and x.shape[:1] != (self.capacity,):
            raise ValueError(f"push all {self.capacity} chains at once, got {tuple(x.shape)}")
        super().push(x)


class MemberStarts:
    """One chain-start object per member of an ensemble, kept apart: block s of every batch is member s's.

        sample(n) = [starts₀.sample(n/m); …; starts_{m−1}.sample(n/m)],   push(x): block s to starts_s

    With one shared buffer, a chain of one member would continue under another's energy; this
    keeps the blocks of :class:`ebmbook.nets.MLPEnsemble` (consecutive rows, n/m each) apart.

    Args:
        members: the m start objects (e.g. m :class:`ReplayBuffer`), alike in event shape and device.

    See chapter: "Contrastive divergence: what goes wrong" (chapters/cd_pathologies.ipynb).
    """

    def __init__(self, members: Sequence[ReplayBuffer]):
        self.members = list(members)
        if not self.members or any(not isinstance(b, ReplayBuffer) for b in self.members):
            raise TypeError("members must be a non-empty list of ReplayBuffer or PersistentChains, one per member")
        self.event_shape, self.device = self.members[0].event_shape, self.members[0].device
        if any((b.event_shape, b.device) != (self.event_shape, self.device) for b in self.members):
            raise ValueError("every member's starts must have the same event shape and device")

    def __len__(self) -> int:
        return min(len(b) for b in self.members)

    def _block(self, n: int) -> int:
        m = len(self.members)
        if count(n, "n") % m:
            raise ValueError(f"n must be a multiple of the {m} members (one block each), got {n}")
        return n // m

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Starting points, shape (n, *event_shape): member s's n/m in block s (drawn in member order)."""
        k = self._block(n)
        return torch.cat([b.sample(k, generator=generator) for b in self.members])

    def push(self, x: Tensor) -> None:
        """Give block s of x, shape (n, *event_shape), back to member s's starts."""
        k = self._block(points(x, "x").shape[0])
        for b, block in zip(self.members, x.split(k)):
            b.push(block)
