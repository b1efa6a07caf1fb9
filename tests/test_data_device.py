"""Data samplers, generators and the device helpers: reproducibility and contracts."""

import pytest
import torch

import ebmbook as eb

TOYS = ["eight_gaussians", "two_moons", "banana"]


@pytest.mark.parametrize("name", TOYS)
def test_same_seed_same_data(name):
    a = getattr(eb.data, name)(100, generator=eb.make_generator(3))
    b = getattr(eb.data, name)(100, generator=eb.make_generator(3))
    c = getattr(eb.data, name)(100, generator=eb.make_generator(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", TOYS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_data_shape_dtype_device(name, dtype):
    x = getattr(eb.data, name)(50, generator=eb.make_generator(0), dtype=dtype)
    assert x.shape == (50, 2) and x.dtype == dtype and x.device.type == "cpu"


def test_two_moons_geometry_matches_scikit_learn():
    """Noise-free points lie on scikit-learn's moons (same centres and radii)."""
    from sklearn.datasets import make_moons

    x = eb.data.two_moons(2000, generator=eb.make_generator(0), noise=1e-9).double()
    ref = torch.as_tensor(make_moons(4000, noise=0.0)[0])
    assert torch.cdist(x, ref).min(dim=1).values.max() < 1e-3


def test_digits_are_scaled_and_bundled():
    split = eb.data.digits_split()
    images, labels = torch.cat([split.x_train, split.x_test]), torch.cat([split.y_train, split.y_test])
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() == -1 and images.max() == 1
    assert set(labels.tolist()) == set(range(10))


def test_make_generator_is_seeded():
    a = torch.randn(3, generator=eb.make_generator(5))
    b = torch.randn(3, generator=eb.make_generator(5))
    assert torch.equal(a, b)


def test_pick_device_respects_the_override(monkeypatch):
    monkeypatch.setenv("EBMBOOK_DEVICE", "cpu")
    assert eb.pick_device() == torch.device("cpu")
    monkeypatch.delenv("EBMBOOK_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert eb.pick_device().type == expected


def test_accurate_dtype():
    assert eb.device.accurate_dtype(torch.device("cpu")) == torch.float64
    assert eb.device.accurate_dtype(torch.device("mps")) == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_grid_and_data_on_cuda():
    gen = eb.make_generator(0, "cuda")
    x = eb.data.two_moons(1000, generator=gen)
    assert x.device.type == "cuda"
    grid = eb.grid.make_grid(-5, 5, 128, dim=2, device="cuda")
    assert abs(eb.grid.log_partition(eb.energies.two_moons, grid).item()) < 1e-4
    assert eb.grid.nll(eb.energies.two_moons, x, grid).device.type == "cuda"
