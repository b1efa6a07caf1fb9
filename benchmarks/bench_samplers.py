"""Throughput of ebmbook's samplers: chain-steps per second, in one process.

For each target (an analytic eight-Gaussians ring, an MLP energy on R², an MLP energy on R⁶⁴)
and each number of chains (1,024 and 16,384), every algorithm (ULA, MALA, HMC with 5 leapfrog
steps, random-walk MH) runs in these implementations:

* ebmbook     ``eb.samplers.run_chain`` over the package's step (state in, state out), started
              from ``eb.samplers.init_state``;
* hand        a hand-optimized plain-PyTorch loop of the same algorithm that caches the energy
              and gradient of the current state and fuses the elementwise updates;
* naive       the per-step loop of common tutorials: parameters' requires_grad switched off
              around the loop, ``.backward()`` into ``x.grad``, the current state's energy and
              gradient recomputed every step;
* torchebm    its LangevinDynamics and HamiltonianMonteCarlo (MALA is its HMC with one
              leapfrog step of ε = √(2η)), skipped if the package is missing;
* ebmkit      its LangevinDynamics, MALA and HMC (module ``ebm``), skipped if missing;
* limit       the floor of any gradient-based sampler: one forward + one input-gradient backward
              of the same batch per gradient the algorithm needs (HMC: 5; MH: one forward).

Every measurement of a group (target, chains, algorithm) is repeated ``--repeats`` times; the
implementations run interleaved, in a rotated order each round, and ratios are taken within a
round. Results are medians with the spread (min–max) over rounds. Time is the process's CPU
time by default (``--clock cpu``): on a machine shared with other work it leaves out the time
the benchmark waits for a core (not the slowdown from sharing caches and memory bandwidth);
``--clock wall`` measures wall-clock time instead.

Usage (from the repository root, in the benchmark's own environment, see README.md)::

    python benchmarks/bench_samplers.py              # about 6 minutes on 2 cores
    python benchmarks/bench_samplers.py --json benchmarks/results-$(date +%F).json --repeats 9
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import math
import os
import platform
import statistics
import time

import torch

import ebmbook as eb

try:
    from torchebm.core import BaseModel as _TorchebmModel
    from torchebm.samplers import HamiltonianMonteCarlo as _TorchebmHMC
    from torchebm.samplers import LangevinDynamics as _TorchebmLangevin
except ImportError:  # the benchmark runs without it
    _TorchebmModel = None

try:
    import ebm as _ebmkit  # what the ebmkit distribution installs

    if not hasattr(_ebmkit, "MALA"):
        _ebmkit = None
except ImportError:
    _ebmkit = None

N_LEAPFROG = 5
ALGORITHMS = ("ula", "mala", "hmc", "mh")
GRADIENTS_PER_STEP = {"ula": 1, "mala": 1, "hmc": N_LEAPFROG, "mh": 0}


# ------------------------------------------------------------------------------------ targets

# the learnable energies live in ebmbook.nets from issue 11 on (ebmbook.energies before)
MLPEnergy = eb.nets.MLPEnergy if hasattr(eb, "nets") else eb.energies.MLPEnergy


def make_targets():
    torch.manual_seed(0)  # the MLPs' initial weights; samplers below use explicit generators
    # step sizes: η for ULA and MALA, the leapfrog ε for HMC, the proposal std σ for MH
    return {
        "eight Gaussians (analytic, d=2)": (eb.energies.eight_gaussians, 2,
                                            dict(ula=0.05, mala=0.05, hmc=0.1, mh=0.5)),
        "MLP 2→128→128→1": (MLPEnergy(2), 2, dict(ula=0.01, mala=0.01, hmc=0.1, mh=0.3)),
        "MLP 64→128→128→1": (MLPEnergy(64), 64, dict(ula=0.01, mala=0.01, hmc=0.1, mh=0.1)),
    }


# ------------------------------------------------------------------------------ implementations

def run_ebmbook(algo, energy, x0, size, n_steps, gen):
    steps = {
        "ula": functools.partial(eb.samplers.langevin_step, energy, step_size=size, generator=gen),
        "mala": functools.partial(eb.samplers.mala_step, energy, step_size=size, generator=gen),
        "hmc": functools.partial(eb.samplers.hmc_step, energy, step_size=size, n_leapfrog=N_LEAPFROG, generator=gen),
        "mh": functools.partial(eb.samplers.mh_step, energy, proposal_std=size, generator=gen),
    }
    state = eb.samplers.init_state(energy, x0, with_grad=algo != "mh")   # once, outside the clock

    def run():
        return eb.samplers.run_chain(steps[algo], state, n_steps=n_steps, keep_trajectory=False).state.x
    return run


def _value_and_grad(energy, x):
    x = x.detach().requires_grad_(True)
    e = energy(x)
    (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def _sq_norm(t):
    return torch.linalg.vector_norm(t.flatten(1), dim=1).square()


def run_hand(algo, energy, x0, size, n_steps, gen):
    """Plain PyTorch, written for speed: cached E and ∇E, fused updates, no checks."""
    n = x0.shape[0]
    mask_shape = (n,) + (1,) * (x0.dim() - 1)
    if algo == "mh":
        with torch.no_grad():
            e0 = energy(x0)
    else:
        e0, g0 = _value_and_grad(energy, x0)

    def ula():
        x, g, s = x0, g0, math.sqrt(2 * size)
        for _ in range(n_steps):
            xi = torch.randn(x.shape, generator=gen)
            x = torch.add(x, g, alpha=-size).add_(xi, alpha=s)
            _, g = _value_and_grad(energy, x)
        return x

    def mala():
        x, e, g, s = x0, e0, g0, math.sqrt(2 * size)
        for _ in range(n_steps):
            xi = torch.randn(x.shape, generator=gen)
            y = torch.add(x, g, alpha=-size).add_(xi, alpha=s)
            e_y, g_y = _value_and_grad(energy, y)
            back = torch.sub(x, y).add_(g_y, alpha=size)
            log_alpha = e - e_y + 0.5 * _sq_norm(xi) - _sq_norm(back) / (4 * size)
            accept = torch.rand(n, generator=gen) < log_alpha.clamp(max=0).exp()   # NaN compares False
            m = accept.view(mask_shape)
            x, e, g = torch.where(m, y, x), torch.where(accept, e_y, e), torch.where(m, g_y, g)
        return x

    def hmc():
        x, e, g = x0, e0, g0
        for _ in range(n_steps):
            p0 = torch.randn(x.shape, generator=gen)
            p = torch.add(p0, g, alpha=-0.5 * size)
            y = x
            for i in range(N_LEAPFROG):
                y = torch.add(y, p, alpha=size)
                e_y, g_y = _value_and_grad(energy, y)
                p = p.add_(g_y, alpha=-size if i < N_LEAPFROG - 1 else -0.5 * size)
            log_alpha = e - e_y + 0.5 * (_sq_norm(p0) - _sq_norm(p))
            accept = torch.rand(n, generator=gen) < log_alpha.clamp(max=0).exp()
            m = accept.view(mask_shape)
            x, e, g = torch.where(m, y, x), torch.where(accept, e_y, e), torch.where(m, g_y, g)
        return x

    def mh():
        x, e = x0, e0
        with torch.no_grad():
            for _ in range(n_steps):
                y = torch.add(x, torch.randn(x.shape, generator=gen), alpha=size)
                e_y = energy(y)
                accept = torch.rand(n, generator=gen) < (e - e_y).clamp(max=0).exp()
                x, e = torch.where(accept.view(mask_shape), y, x), torch.where(accept, e_y, e)
        return x

    return dict(ula=ula, mala=mala, hmc=hmc, mh=mh)[algo]


def run_naive(algo, energy, x0, size, n_steps, gen):
    """The tutorial loop: toggled requires_grad, .backward() into x.grad, nothing cached."""
    params = list(energy.parameters()) if isinstance(energy, torch.nn.Module) else []

    def grad_at(x):
        x = x.detach().clone().requires_grad_(True)
        e = energy(x)
        e.sum().backward()
        return e.detach(), x.grad

    def ula():
        x = x0.clone()
        for _ in range(n_steps):
            _, g = grad_at(x)
            x = (x - size * g + math.sqrt(2 * size) * torch.randn_like(x)).detach()
        return x

    def mala():
        x = x0.clone()
        for _ in range(n_steps):
            e, g = grad_at(x)
            y = (x - size * g + math.sqrt(2 * size) * torch.randn_like(x)).detach()
            e_y, g_y = grad_at(y)
            log_q_fwd = -((y - x + size * g) ** 2).flatten(1).sum(1) / (4 * size)
            log_q_bwd = -((x - y + size * g_y) ** 2).flatten(1).sum(1) / (4 * size)
            alpha = torch.exp(torch.clamp(e - e_y + log_q_bwd - log_q_fwd, max=0))
            accept = torch.rand_like(alpha) < alpha
            x = torch.where(accept.view(-1, *[1] * (x.dim() - 1)), y, x)
        return x

    def hmc():
        x = x0.clone()
        for _ in range(n_steps):
            p0 = torch.randn_like(x)
            e, g = grad_at(x)
            p, y = p0 - 0.5 * size * g, x
            for i in range(N_LEAPFROG):
                y = y + size * p
                _, g_y = grad_at(y)
                p = p - (size if i < N_LEAPFROG - 1 else 0.5 * size) * g_y
            with torch.no_grad():
                e_y = energy(y)
            h0 = e + 0.5 * (p0**2).flatten(1).sum(1)
            h1 = e_y + 0.5 * (p**2).flatten(1).sum(1)
            accept = torch.rand_like(h0) < torch.exp(torch.clamp(h0 - h1, max=0))
            x = torch.where(accept.view(-1, *[1] * (x.dim() - 1)), y.detach(), x)
        return x

    def mh():
        x = x0.clone()
        with torch.no_grad():
            for _ in range(n_steps):
                y = x + size * torch.randn_like(x)
                alpha = torch.exp(torch.clamp(energy(x) - energy(y), max=0))
                accept = torch.rand_like(alpha) < alpha
                x = torch.where(accept.view(-1, *[1] * (x.dim() - 1)), y, x)
        return x

    body = dict(ula=ula, mala=mala, hmc=hmc, mh=mh)[algo]

    def run():
        for p in params:
            p.requires_grad_(False)
        try:
            return body()
        finally:
            for p in params:
                p.requires_grad_(True)
    return run


def run_torchebm(algo, energy, x0, size, n_steps, gen):
    if _TorchebmModel is None or algo == "mh":
        return None

    class Energy(_TorchebmModel):
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, x):
            return self.f(x)

    model = Energy(energy)
    if algo == "ula":   # noise_scale 1 is ULA: x' = x − η∇E + √(2η)ξ
        sampler = _TorchebmLangevin(model, step_size=size, noise_scale=1.0)
    elif algo == "mala":  # HMC with one leapfrog step of ε = √(2η) is MALA with step η
        sampler = _TorchebmHMC(model, step_size=math.sqrt(2 * size), n_leapfrog_steps=1)
    else:
        sampler = _TorchebmHMC(model, step_size=size, n_leapfrog_steps=N_LEAPFROG)
    return lambda: sampler.sample(x=x0, n_steps=n_steps, generator=gen)


def run_ebmkit(algo, energy, x0, size, n_steps, gen):
    if _ebmkit is None or algo == "mh":
        return None
    if algo == "ula":
        sampler = _ebmkit.LangevinDynamics(step_size=size, steps=n_steps)
    elif algo == "mala":
        sampler = _ebmkit.MALA(step_size=size, steps=n_steps)
    else:
        sampler = _ebmkit.HMC(step_size=size, leapfrog_steps=N_LEAPFROG, steps=n_steps)
    return lambda: sampler.sample(energy, x0)   # ebmkit draws from the global generator


def run_limit(algo, energy, x0, size, n_steps, gen):
    """One forward + input-gradient backward per gradient the algorithm needs (MH: one forward)."""
    if algo == "mh":
        def forward_only():
            with torch.no_grad():
                for _ in range(n_steps):
                    e = energy(x0)
            return e
        return forward_only

    def gradients():
        for _ in range(n_steps * GRADIENTS_PER_STEP[algo]):
            _, g = _value_and_grad(energy, x0)
        return g
    return gradients


IMPLEMENTATIONS = {
    "ebmbook": run_ebmbook,
    "hand": run_hand,
    "naive": run_naive,
    "torchebm": run_torchebm,
    "ebmkit": run_ebmkit,
    "limit": run_limit,
}


# --------------------------------------------------------------------------------- measurement

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def timed(fn) -> float:
    t0 = clock()
    fn()
    return clock() - t0


def measure_group(algo, energy, dim, size, n_chains, repeats, seconds):
    """Chain-steps per second of every implementation, interleaved; returns {impl: [per round]}."""
    gen = eb.make_generator(0)
    x0 = torch.randn(n_chains, dim, generator=gen) * (2.0 if dim == 2 else 1.0)
    probe = run_ebmbook(algo, energy, x0, size, 2, gen)
    probe()
    per_step = timed(probe) / 2
    n_steps = max(2, min(400, round(seconds / per_step)))
    runners = {}
    for name, make in IMPLEMENTATIONS.items():
        run = make(algo, energy, x0, size, n_steps, eb.make_generator(1))
        if run is not None:
            run()                                                    # warm-up, outside the clock
            runners[name] = run
    names = list(runners)
    rates = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            rates[name].append(n_chains * n_steps / timed(runners[name]))
    return rates, n_steps


def summary(values):
    return dict(median=statistics.median(values), low=min(values), high=max(values))


def ratios(a, b):
    return summary([x / y for x, y in zip(a, b)])


# ----------------------------------------------------------------------------------- reporting

def fmt_rate(s):
    m = s["median"]
    spread = 50 * (s["high"] - s["low"]) / m
    unit = (1e6, "M") if m >= 1e6 else (1e3, "k")
    return f"{m / unit[0]:.3g}{unit[1]} ±{spread:.0f}%"


def fmt_ratio(s):
    return f"{s['median']:.2f} [{s['low']:.2f}–{s['high']:.2f}]"


def cpu_name():
    """The CPU's model name and family from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in f if ":" in line)}
        return f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    except (OSError, KeyError):
        return platform.processor() or "unknown"


def versions():
    out = {"python": platform.python_version(), "torch": torch.__version__, "ebmbook": eb.__version__}
    for dist in ("torchebm", "ebmkit"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per group")
    parser.add_argument("--seconds", type=float, default=0.25, help="target duration of one ebmbook measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--chains", type=int, nargs="+", default=[1024, 16384])
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: the process's CPU time (leaves out waiting for a core); wall: wall-clock time")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--note", help="a line stored with the results (e.g. which ebmbook tree was measured)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]

    info = dict(date=datetime.date.today().isoformat(),
                machine=f"{platform.machine()}, {os.cpu_count()} cores, CPU capability "
                        f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} torch thread(s)",
                cpu=cpu_name(), clock=args.clock, **versions(), **({"note": args.note} if args.note else {}))
    print(" · ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    results = []
    start = time.perf_counter()
    for target, (energy, dim, sizes) in make_targets().items():
        for n_chains in args.chains:
            for algo in ALGORITHMS:
                rates, n_steps = measure_group(algo, energy, dim, sizes[algo], n_chains, args.repeats, args.seconds)
                row = dict(target=target, chains=n_chains, algorithm=algo, steps=n_steps,
                           rates={k: v for k, v in rates.items()})
                results.append(row)
                line = "  ".join(f"{k} {fmt_rate(summary(v))}" for k, v in rates.items())
                print(f"[{time.perf_counter() - start:5.0f}s] {target} n={n_chains} {algo}: {line}", flush=True)

    print()
    print("| target | chains | sampler | ebmbook | hand | naive | torchebm | ebmkit | limit |"
          " ebmbook/hand | ebmbook/limit | ebmbook/torchebm | ebmbook/ebmkit |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        r = row["rates"]
        cells = [fmt_rate(summary(r[k])) if k in r else "—" for k in ("ebmbook", "hand", "naive", "torchebm",
                                                                         "ebmkit", "limit")]
        rel = [fmt_ratio(ratios(r["ebmbook"], r[k])) if k in r else "—" for k in ("hand", "limit", "torchebm",
                                                                                 "ebmkit")]
        name = dict(ula="ULA", mala="MALA", hmc=f"HMC (L={N_LEAPFROG})", mh="MH")[row["algorithm"]]
        print(f"| {row['target']} | {row['chains']:,} | {name} | " + " | ".join(cells + rel) + " |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(info=info, results=results), f, indent=1)


if __name__ == "__main__":
    main()
