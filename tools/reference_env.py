"""The reference environment in which chapter outputs are produced and checked.

Committed outputs are compared text-for-text by nbval, so the process that
writes them (tools/execute.py) and the process that checks them (pytest, via
conftest.py) must run kernels under the same settings. They both import
REFERENCE_ENV from here; change it in this one place only.
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

# One CPU kernel family on x86-64: without these, a machine with AVX-512 would
# take different code paths (and round differently) from one with only AVX2.
# Set only on CPUs with AVX2: elsewhere (ARM, old x86) torch would warn about a
# capability it cannot use, and the warning would land in the outputs.
X86_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorized kernels
    # MKL's BLAS picks its code path by CPU vendor as well as by instruction set:
    # with "AVX2", Intel and AMD processors still round matrix products differently.
    # "COMPATIBLE" is the one path that gives the same bits on every x86-64 CPU,
    # at the price of slower matrix products (about 1.5-2x for the book's small nets).
    "MKL_CBWR": "COMPATIBLE",
}


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


def reference_env() -> dict[str, str]:
    """The variables to set for this machine."""
    env = dict(REFERENCE_ENV)
    if has_avx2():
        env.update(X86_ENV)
    return env


def apply() -> dict[str, str]:
    """Force the reference settings into os.environ (inherited by every kernel started later).

    Returns the variables that were set.
    """
    env = reference_env()
    os.environ.update(env)
    return env
