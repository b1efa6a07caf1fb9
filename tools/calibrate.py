"""Time a fixed workload of the book's typical operations, to normalize notebook times by machine.

Machines of the same kind differ about 2x in speed on the book's workload, so a
budget in raw seconds would pass or fail by the machine drawn. The test run
(conftest.py) times this workload once, after the notebooks, in a fresh process
under the reference environment, and reports every notebook's time multiplied by

    REFERENCE_SECONDS / (this machine's seconds)

that is, in seconds of the machine that wrote the committed outputs.

    python tools/calibrate.py          # prints this machine's seconds and factor
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The workload's CPU seconds (best of REPEATS) on the machine that wrote the committed
# outputs, one core, reference environment: the median of about fifteen measurements over three
# hours on 2026-12-02, alone and after test runs (0.33-0.40 s). Every chapter was re-executed there; its outputs are bit for bit
# those of the AMD EPYC family 25 model 1 machine that wrote them before (the fingerprints of
# tools/fingerprints/ agree on all 43 operations), only the timing cells changed.
# What the factor cannot do: across CPU generations the workload and the notebooks do not
# speed up alike. The family 25 machine ran this workload in 0.70-1.21 s (2-3x slower) but the
# chapters only 1.6-2.2x slower (the conv chapter 1.6x, the MLP chapters 1.9-2.2x), so
# normalized seconds from such a machine understate the reference's by up to about 25%.
REFERENCE_SECONDS = 0.37
REFERENCE_MACHINE = "AMD EPYC, family 26 model 2 (AVX2 kernels pinned)"
REPEATS = 3


def workload() -> None:
    """About a second of what chapters do: MLP sampler steps and training, convolutions, grids."""
    import torch

    g = torch.Generator().manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                              torch.nn.SiLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    data = torch.randn(4096, 2, generator=g)
    x = torch.randn(256, 2, generator=g)
    for _ in range(60):                          # training iterations with 5 Langevin steps each
        for _ in range(5):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(mlp(x).sum(), x)
            x = x - 0.01 * grad + 0.14 * torch.randn(x.shape, generator=g)
        batch = data[torch.randint(len(data), (256,), generator=g)]
        loss = mlp(batch).mean() - mlp(x.detach()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    points = torch.randn(128 * 128, 2, generator=g)
    with torch.no_grad():                        # exact normalization on a 128² grid
        for _ in range(20):
            torch.logsumexp(-mlp(points).squeeze(-1), 0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.SiLU(),
                               torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.SiLU(),
                               torch.nn.Flatten(), torch.nn.Linear(512, 1))
    images = torch.rand(128, 1, 8, 8, generator=g) * 2 - 1
    for _ in range(40):                          # sampler steps on 8x8 images
        images = images.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(conv(images).sum(), images)
        images = (images - grad + 0.01 * torch.randn(images.shape, generator=g)).clamp(-1, 1)


def measure(repeats: int = REPEATS) -> float:
    """Best CPU seconds of the workload in this process."""
    workload()                                   # warm-up: imports, allocator, kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        workload()
        best = min(best, time.process_time() - start)
    return best


def measure_in_reference_env(timeout: float = 300) -> float:
    """measure() in a fresh interpreter under the reference environment (one thread)."""
    sys.path.insert(0, str(ROOT))
    from tools import reference_env

    env = {**__import__("os").environ, **reference_env.reference_env()}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json"], env=env,
                         capture_output=True, text=True, timeout=timeout, check=True).stdout
    return json.loads(out)["seconds"]


def factor(seconds: float) -> float:
    """Multiply this machine's seconds by this to get seconds of the reference machine."""
    return REFERENCE_SECONDS / seconds


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps({"seconds": measure()}))
    else:
        s = measure_in_reference_env()
        print(f"calibration workload: {s:.3f} s here, {REFERENCE_SECONDS} s on the reference machine "
              f"({REFERENCE_MACHINE}); factor {factor(s):.3f}")
