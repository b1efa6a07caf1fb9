"""Bad input raises a clear error that names the fix."""

import pytest
import torch

import ebmbook as eb

GRID = eb.grid.make_grid(-3, 3, 16, dim=2)


def wrong_shape_energy(x):
    return x.sum(1, keepdim=True)  # (n, 1) instead of (n,)


def nan_energy(x):
    return torch.where(x[:, 0] > 0, torch.nan, 0.0) + x[:, 1] ** 2


class _MetaGenerator:
    """Stands in for a generator on another device (this machine may have no GPU)."""

    device = torch.device("meta")


CASES = [
    ("energy of wrong shape", lambda: eb.grid.log_partition(wrong_shape_energy, GRID), ValueError, "squeeze"),
    ("energy returns NaN", lambda: eb.grid.log_partition(nan_energy, GRID), ValueError, "non-finite"),
    ("points without batch dimension", lambda: eb.energies.evaluate(eb.energies.banana, torch.zeros(2)), ValueError, "x[None]"),
    ("points of wrong dimension", lambda: eb.energies.banana(torch.zeros(4, 3)), ValueError, "(n, 2)"),
    ("temperature zero", lambda: eb.grid.log_partition(eb.energies.banana, GRID, temperature=0.0), ValueError, "positive"),
    ("negative temperature", lambda: eb.energies.gaussian_log_partition(precision=torch.eye(2), temperature=-1.0), ValueError, "positive"),
    ("grid size zero", lambda: eb.grid.make_grid(-1, 1, 0, dim=2), ValueError, "n must be"),
    ("grid box reversed", lambda: eb.grid.make_grid(1, -1, 8, dim=1), ValueError, "low < high"),
    ("grid in 3-D", lambda: eb.grid.make_grid(-1, 1, 8, dim=3), ValueError, "importance sampling"),
    ("grid without dimension", lambda: eb.grid.make_grid(-1, 1, 8), ValueError, "dim=1 or dim=2"),
    ("data outside the box for the NLL", lambda: eb.grid.nll(eb.energies.banana, torch.tensor([[9.0, 0.0]]), GRID), ValueError, "enlarge the box"),
    ("samples of wrong dimension for a KL", lambda: eb.grid.kl_from_samples(torch.zeros(5, 3), eb.energies.banana, GRID), ValueError, "(n, 2)"),
    ("not a generator", lambda: eb.data.two_moons(10, generator=0), TypeError, "make_generator"),
    ("generator on another device", lambda: eb.grid.kl_floor(eb.energies.banana, GRID, 10, generator=_MetaGenerator()), (TypeError, ValueError), "make_generator"),
    ("non-positive sample count", lambda: eb.data.banana(0, generator=eb.make_generator(0)), ValueError, "positive int"),
    ("negative seed", lambda: eb.make_generator(-1), ValueError, "non-negative"),
    ("both covariance and precision", lambda: eb.energies.gaussian(torch.zeros(2, 2), torch.zeros(2), covariance=torch.eye(2), precision=torch.eye(2)), ValueError, "exactly one"),
    ("mixture weights not summing to one", lambda: eb.energies.gaussian_mixture(torch.zeros(3, 2), torch.zeros(2, 2), 1.0, torch.tensor([0.5, 0.6])), ValueError, "sum to 1"),
    ("chunk size zero", lambda: eb.grid.log_partition(eb.energies.banana, GRID, chunk_size=0), ValueError, "chunk_size"),
]


@pytest.mark.parametrize("what, call, error, fix", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(what, call, error, fix):
    with pytest.raises(error) as info:
        call()
    assert fix in str(info.value), f"{what}: message {str(info.value)!r} should mention {fix!r}"


def test_unknown_device_override(monkeypatch):
    monkeypatch.setenv("EBMBOOK_DEVICE", "cuda")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present, so the override is valid")
    with pytest.raises(RuntimeError, match="unset it or use cpu"):
        eb.pick_device()
