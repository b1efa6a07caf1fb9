"""The mechanism of every checker: run a student's function beside the reference, explain the first difference.

:func:`compare` gives both functions the same inputs (fresh copies, so an in-place change by
the student is caught), compares the outputs element by element, and reports the first
mismatch with its case, position, both values and, where the mistake is a common one, a hint.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

__all__ = ["CheckResult", "compare"]

Hint = Callable[[Any, Any, dict], "str | None"]  # (got, want, inputs) -> hint or None


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: truthy when passed; displays as its message.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def __str__(self) -> str:
        # for reading: lines of at most 75 characters, as a notebook's output on the website needs
        return "\n".join(textwrap.fill(line, width=75, subsequent_indent="      ", break_on_hyphens=False)
                         for line in self.message.splitlines())

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))          # how IPython and Jupyter display a verdict


def _clone(v):
    if isinstance(v, Tensor):
        return v.clone()
    if isinstance(v, (list, tuple)):
        return type(v)(_clone(u) for u in v)
    if isinstance(v, dict):
        return {k: _clone(u) for k, u in v.items()}
    return v


def _same(a, b) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.shape == b.shape and torch.equal(a, b)
    return True


def _show(v) -> str:
    if isinstance(v, Tensor):
        return f"{v.tolist()}" if v.numel() <= 6 else f"tensor of shape {tuple(v.shape)}"
    return getattr(v, "__name__", "callable") if callable(v) else repr(v)


def _describe(inputs: dict) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in inputs.items())


def compare(student: Callable, reference: Callable, cases: Sequence[tuple[str, dict]], *, name: str,
            atol: float = 1e-5, rtol: float = 1e-4, hints: Sequence[Hint] = ()) -> CheckResult:
    """Run ``student`` and ``reference`` on every case and report the first difference.

    Args:
        student: the function under test.
        reference: the reference implementation, same signature.
        cases: (description, arguments) pairs; the arguments, a dict in the order of the
            function's parameters, are passed by position (students name them as they like).
        name: what the student wrote, for the messages.
        atol, rtol: tolerance of ``torch.allclose`` (non-finite outputs never pass).
        hints: functions (got, want, inputs) -> hint or None, tried in order on a mismatch.

    Returns:
        A :class:`CheckResult`.
    """
    for desc, inputs in cases:
        inputs_before = _clone(inputs)
        try:
            got = student(*inputs.values())
        except Exception as err:  # the student's error is the finding
            return CheckResult(False, f"✗ {name} raised {type(err).__name__}: {err}\n  case: {desc} ({_describe(inputs_before)})")
        for k, v in inputs.items():
            if not _same(v, inputs_before[k]):
                return CheckResult(False, f"✗ {name} changed its input {k!r} in place\n  case: {desc}\n"
                                          "  hint: work on a copy (x.clone()) or use out-of-place operations")
        want = reference(*_clone(inputs_before).values())
        problem = _difference(got, want, atol, rtol)
        if problem:
            msg = f"✗ {name} differs from the reference\n  case: {desc} ({_describe(inputs_before)})\n  {problem}"
            for hint in hints:
                text = hint(got, want, inputs_before)
                if text:
                    msg += f"\n  hint: {text}"
                    break
            return CheckResult(False, msg)
    return CheckResult(True, f"✓ {name} matches the reference on all {len(cases)} cases")


def _difference(got, want, atol: float, rtol: float) -> str | None:
    """None when got matches want, else a one-line description of the first difference."""
    want_t = torch.as_tensor(want)
    if not isinstance(got, Tensor):
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        else:
            return f"expected a tensor, got {type(got).__name__}"
    if got.shape != want_t.shape:
        return f"shape {tuple(got.shape)}, expected {tuple(want_t.shape)}"
    g, w = got.detach().double().cpu(), want_t.detach().double().cpu()
    if not torch.isfinite(g).all():
        i = (~torch.isfinite(g)).nonzero()[0].tolist()
        return f"non-finite value {g[tuple(i)].item()} at index {i} (expected {w[tuple(i)].item():.6g})"
    err = (g - w).abs() - rtol * w.abs()                 # > atol where allclose fails
    if (err > atol).any():
        i = torch.unravel_index(err.argmax(), err.shape) if err.dim() else ()
        i = tuple(int(k) for k in i)
        return f"at {list(i)}: got {g[i].item():.6g}, expected {w[i].item():.6g} (largest difference)"
    return None
