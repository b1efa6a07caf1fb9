"""Where tensors live: choosing a device once, and random generators that match it.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import os

import torch

from ._contracts import count

__all__ = ["pick_device", "make_generator", "check_generator", "accurate_dtype"]


def pick_device() -> torch.device:
    """The device a chapter runs on: ``EBMBOOK_DEVICE`` if set, else cuda, else mps, else cpu.

    Call it once, in a chapter's setup cell; package functions follow the device of their
    inputs and never call it.

    Returns:
        A ``torch.device``.

    Raises:
        RuntimeError: ``EBMBOOK_DEVICE`` names a device that this machine does not have.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    name = os.environ.get("EBMBOOK_DEVICE", "").strip()
    if not name:
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise RuntimeError(f"EBMBOOK_DEVICE={name!r} is not a device name; use cpu, cuda, cuda:1 or mps") from err
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if not available.get(device.type, lambda: True)():
        raise RuntimeError(f"EBMBOOK_DEVICE={name!r} but {device.type.upper()} is not available here; "
                           "unset it or use cpu")
    return device


def make_generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A seeded ``torch.Generator`` living on ``device`` (cpu when None).

    Every random draw in ebmbook takes such a generator; it must live on the device of
    the tensors it fills.

    Args:
        seed: a non-negative integer.
        device: where the generator's tensors will live.

    Returns:
        A ``torch.Generator`` seeded with ``seed``.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    seed = count(seed, "seed", minimum=0)
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return torch.Generator(device=device).manual_seed(seed)


def check_generator(generator: torch.Generator, device: torch.device | str | None = None) -> None:
    """Raise if ``generator`` is not a generator, or cannot fill tensors on ``device``.

    Args:
        generator: the generator about to be used.
        device: the device of the tensors to fill; None checks the type only.

    Raises:
        TypeError: ``generator`` is not a ``torch.Generator``.
        ValueError: it lives on another device type.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                        "make one with eb.make_generator(seed, device)")
    if device is not None and generator.device.type != torch.device(device).type:
        raise ValueError(f"generator lives on {generator.device} but the tensors are on {device}; "
                         f"make it with eb.make_generator(seed, device={str(device)!r})")


def accurate_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it, float32 on mps (which has no float64).

    Used to accumulate sums such as log Z more accurately than the energy's own dtype.
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64
