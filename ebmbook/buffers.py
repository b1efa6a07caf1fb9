"""A replay buffer: where short-run chains start, and where they are put back.

Short-run training (Du & Mordatch 2019) starts each iteration's chains mostly from the end
points of earlier chains, kept in a buffer, and a small fraction (5% by default) from fresh
noise, so that new modes can still be found. After the chains have run, their end points are
pushed back, overwriting the oldest entries once the buffer is full.

The buffer holds state across training iterations; the loop over sampler steps still lives in
:func:`ebmbook.samplers.run_chain`.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .device import check_generator

__all__ = ["ReplayBuffer"]


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

    See chapter: "Training by contrastive divergence".
    """

    def __init__(self, capacity: int, event_shape: Sequence[int], *, low: float = -1.0, high: float = 1.0,
                 reinit_fraction: float = 0.05, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int ≥ 1, got {capacity!r}")
        event_shape = tuple(event_shape)
        if not event_shape or any(not isinstance(s, int) or s < 1 for s in event_shape):
            raise ValueError(f"event_shape must be a non-empty tuple of positive ints, got {event_shape!r}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"need finite low < high for the noise box, got low={low}, high={high}")
        if isinstance(reinit_fraction, bool) or not isinstance(reinit_fraction, (int, float)) \
                or not 0 <= reinit_fraction <= 1:
            raise ValueError(f"reinit_fraction must be a number in [0, 1], got {reinit_fraction!r}")
        self.capacity = capacity
        self.event_shape = event_shape
        self.low, self.high = float(low), float(high)
        self.reinit_fraction = float(reinit_fraction)
        self.device = torch.device(device)
        self.dtype = dtype
        self.data = torch.empty((capacity, *event_shape), device=self.device, dtype=dtype)  # (capacity, *event_shape)
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
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int ≥ 1, got {n!r}")
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
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must have shape (m, *{self.event_shape}), got {tuple(x.shape)}")
        if x.device != self.device:
            raise ValueError(f"x is on {x.device} but the buffer on {self.device}; "
                             "make the buffer with device=x.device")
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError("refusing to store non-finite points: the chains diverged; "
                                     "use a smaller sampler step_size")
        x = x.detach()[-self.capacity:].to(self.dtype)
        m = x.shape[0]
        rows = (self._next + torch.arange(m, device=self.device)) % self.capacity
        self.data[rows] = x
        self._next = (self._next + m) % self.capacity
        self.size = min(self.capacity, self.size + m)
