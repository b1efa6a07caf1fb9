"""Argument contracts checked at the public entry points of ebmbook: one wording per error.

Each function returns the checked (and normalized) value or raises ``TypeError`` (wrong
kind of object) or ``ValueError`` (right kind, wrong value), with a message that names
the argument and the fix. Hot loops do not call these: steps trust a state that
``init_state`` or ``run_chain`` checked.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

# A grid or buffer larger than this is almost surely a typo (256² cells take 0.5 MB)
MAX_BYTES = 4 * 2**30


def count(value, name: str, minimum: int = 1) -> int:
    """An int ≥ minimum (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int ≥ {minimum}")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def number(value, name: str, *, low: float = 0.0, inclusive: bool = False, high: float = math.inf,
           advice: str = "") -> float:
    """A finite real number in (low, high] (or [low, high] with inclusive); numpy scalars pass."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (value >= low if inclusive else value > low) and value <= high)
    if not ok:
        if low == 0 and high == math.inf:
            what = "a non-negative finite number" if inclusive else "a positive finite number"
        else:
            what = f"a finite number {'≥' if inclusive else '>'} {low:g}" + (f" and ≤ {high:g}" if high < math.inf else "")
        raise ValueError(f"{name} must be {what}, got {value!r}" + (f"; {advice}" if advice else ""))
    return float(value)


def positive(value, name: str, advice: str = "") -> float:
    """A finite number > 0."""
    return number(value, name, advice=advice)


def non_negative(value, name: str) -> float:
    """A finite number ≥ 0."""
    return number(value, name, inclusive=True)


def fraction(value, name: str) -> float:
    """A number in [0, 1]."""
    return number(value, name, inclusive=True, high=1.0)


def per_chain(value, name: str, x: Tensor, advice: str = "") -> float | Tensor:
    """A positive number, or a positive tensor of shape (n,) with one value per chain of x."""
    if isinstance(value, Tensor):
        if value.shape != (x.shape[0],):
            raise ValueError(f"{name} given as a tensor must hold one value per chain, shape ({x.shape[0]},), "
                             f"got {tuple(value.shape)}; or pass a number")
        value = value.to(device=x.device, dtype=x.dtype)
        if not bool((torch.isfinite(value) & (value > 0)).all()):
            raise ValueError(f"every entry of {name} must be positive and finite" + (f"; {advice}" if advice else ""))
        return value
    return positive(value, name, advice)


def points(x, name: str = "x", *, dim: int | None = None, event_ndim: int | None = None) -> Tensor:
    """A non-empty floating-point batch of shape (n, *event_shape).

    dim fixes the shape to (n, dim); event_ndim fixes the number of event dimensions.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or (dim is not None and (x.dim() != 2 or x.shape[1] != dim)) \
            or (event_ndim is not None and x.dim() != 1 + event_ndim):
        want = f"(n, {dim})" if dim is not None else "(n, *event_shape)"
        raise ValueError(f"{name} must have shape {want} with one row per point, got {tuple(x.shape)}; "
                         "for a single point use x[None]")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (n = 0); give at least one point")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}; use {name}.float() (or .double())")
    return x


def floating(dtype, name: str = "dtype") -> torch.dtype:
    """A floating-point torch dtype."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{name} must be a floating-point torch dtype such as torch.float32, got {dtype!r}")
    return dtype


def like(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    """a and b share event shape, device and dtype."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same event shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device or a.dtype != b.dtype:
        raise ValueError(f"{names[0]} is {a.dtype} on {a.device} but {names[1]} is {b.dtype} on {b.device}; "
                         "convert one with .to(other)")


def memory(n_values: int, dtype: torch.dtype, what: str) -> None:
    """Refuse to allocate more than MAX_BYTES for n_values entries of dtype."""
    size = n_values * torch.empty((), dtype=dtype).element_size()
    if size > MAX_BYTES:
        raise ValueError(f"{what} would take {size / 2**30:.1f} GiB (more than {MAX_BYTES / 2**30:.0f} GiB); "
                         "use fewer cells or points")


def choice(value, name: str, options) -> str:
    """One of the given options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value
