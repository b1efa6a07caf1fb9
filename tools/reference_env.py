"""The reference environment in which chapter outputs are produced and checked.

Committed outputs are compared by nbval, so the process that writes them
(tools/execute.py) and the process that checks them (pytest, via conftest.py)
must run kernels under the same settings. They both import this module; change
the settings in this one place only.

Two kinds of platform (see ``is_reference_platform``):

* the **reference platform**, x86-64 with AVX2 under the settings below: every
  output that does not follow a training run is compared text for text;
* **any other platform** (ARM, x86-64 without AVX2, or a kernel family forced with
  ``EBMBOOK_CPU_KERNELS``): the numbers of every output are masked before the
  comparison, as they always are in cells tagged ``nbval-mask-numbers``
  (tools/nbcompare.py), and the notebooks' asserts check the claims unchanged.
"""

from __future__ import annotations

import os
import platform

REFERENCE_ENV: dict[str, str] = {
    # One thread per kernel: a float reduction's result depends on how it is split
    # across threads, and nbval runs two notebooks at a time on two cores.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # Set and dict iteration order must not change from run to run.
    "PYTHONHASHSEED": "0",
    # The committed outputs are CPU outputs, even on a machine with a GPU.
    "EBMBOOK_DEVICE": "cpu",
}

# One CPU kernel family on x86-64 (measured with tools/fingerprint.py; see
# tools/fingerprints/README.md). Set only on CPUs with AVX2: elsewhere torch would
# warn about a capability it cannot use, and the warning would land in the outputs.
X86_ENV: dict[str, str] = {
    # PyTorch's vectorized kernels (random draws, elementwise math, reductions):
    # without it a CPU with AVX-512 takes other code paths and rounds differently.
    "ATEN_CPU_CAPABILITY": "avx2",
    # MKL's BLAS picks its code path by CPU vendor as well as by instruction set:
    # with "AVX2", Intel and AMD processors still round matrix products differently.
    # "COMPATIBLE" is the one path meant to give the same bits on every x86-64 CPU;
    # "STRICT" also makes them independent of the memory alignment of the inputs.
    # It costs about 1.5x on the book's small matrix products.
    "MKL_CBWR": "COMPATIBLE,STRICT",
    # oneDNN (convolutions) picks its kernels by instruction set: capped at AVX2 a
    # CPU with AVX-512 takes the same kernels as one without (no cost on AVX2 CPUs).
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}

# Set to another ATen kernel family ("default", the SSE path) to run the book as
# on another platform: outputs are then compared with their numbers masked.
KERNELS_OVERRIDE = "EBMBOOK_CPU_KERNELS"


def has_avx2() -> bool:
    """True on an x86-64 CPU with AVX2 (forcing AVX2 kernels elsewhere would crash).

    Reads /proc/cpuinfo where it exists (Linux); elsewhere assumes any x86-64
    CPU has AVX2, as every one sold since 2015 does.
    """
    if platform.machine().lower() not in {"x86_64", "amd64"}:  # Windows says AMD64
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return " avx2" in f.read()
    except OSError:
        return True


def kernels_override() -> str | None:
    """The kernel family forced with EBMBOOK_CPU_KERNELS, or None."""
    value = os.environ.get(KERNELS_OVERRIDE, "").strip().lower()
    return value or None


def is_reference_platform() -> bool:
    """Whether untagged outputs are compared text for text here.

    True on x86-64 with AVX2 and no other kernel family forced: the platform on
    which the committed outputs were written and on which every operation that
    does not amplify rounding gives the same bits (tools/fingerprints/).
    """
    override = kernels_override()
    return has_avx2() and (override is None or override == X86_ENV["ATEN_CPU_CAPABILITY"])


def reference_env() -> dict[str, str]:
    """The variables to set for this machine."""
    env = dict(REFERENCE_ENV)
    if has_avx2():
        env.update(X86_ENV)
    override = kernels_override()
    if override is not None:
        env["ATEN_CPU_CAPABILITY"] = override
    return env


def describe() -> str:
    """One line: which comparison rules hold on this machine, and why."""
    if is_reference_platform():
        return "reference platform (x86-64 with AVX2): untagged outputs are compared exactly"
    why = (f"{KERNELS_OVERRIDE}={kernels_override()}" if has_avx2()
           else f"{platform.machine() or 'unknown CPU'} without AVX2 kernels")
    return (f"not the reference platform ({why}): every output is compared with its numbers "
            "masked; the notebooks' asserts check the claims")


def apply() -> dict[str, str]:
    """Force the reference settings into os.environ (inherited by every kernel started later).

    Returns the variables that were set.
    """
    env = reference_env()
    os.environ.update(env)
    return env
