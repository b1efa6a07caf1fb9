"""The digits train/test split and the image-grid plot helper."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import ebmbook as eb  # noqa: E402


def test_split_is_the_full_set_cut_in_two():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 8 - 1
    labels = torch.as_tensor(bunch.target)
    split = eb.data.digits_split(n_test=300)
    assert split.x_train.shape == (1497, 1, 8, 8) and split.x_test.shape == (300, 1, 8, 8)
    assert split.y_train.shape == (1497,) and split.y_test.shape == (300,)
    assert torch.equal(torch.cat([split.x_train, split.x_test]), images)
    assert torch.equal(torch.cat([split.y_train, split.y_test]), labels)


def test_split_is_deterministic_and_balanced():
    a, b = eb.data.digits_split(), eb.data.digits_split()
    assert all(torch.equal(s, t) for s, t in zip(a, b))
    counts = torch.bincount(a.y_test, minlength=10)
    assert a.x_test.shape[0] == 360 and counts.min() >= 33 and counts.max() <= 37


def test_split_pixels_are_the_scaled_levels():
    split = eb.data.digits_split()
    levels = (split.x_train + 1) * 8                         # back to 0…16
    assert torch.equal(levels, levels.round()) and levels.min() == 0 and levels.max() == 16


def test_split_device_and_dtype():
    split = eb.data.digits_split(dtype=torch.float64, device="cpu")
    assert split.x_test.dtype == torch.float64 and split.x_test.device.type == "cpu"


@pytest.mark.parametrize("n_test", [0, 1797, -5, 2.5, True])
def test_split_rejects_bad_sizes(n_test):
    with pytest.raises(ValueError, match="n_test"):
        eb.data.digits_split(n_test)


def test_image_grid_places_each_tile():
    images = torch.stack([torch.full((1, 2, 3), float(v)) for v in (-1.0, 0.0, 0.5)])   # (3, 1, 2, 3)
    fig, ax = plt.subplots()
    out = eb.plotting.plot_image_grid(images, n_cols=2, ax=ax)
    canvas = torch.as_tensor(ax.get_images()[0].get_array().data)
    plt.close(fig)
    assert out is ax
    assert canvas.shape == (2 * 3 + 1, 2 * 4 + 1)            # 2 rows, 2 columns, 1-pixel gaps
    assert torch.all(canvas[1:3, 1:4] == -1) and torch.all(canvas[1:3, 5:8] == 0)
    assert torch.all(canvas[4:6, 1:4] == 0.5) and torch.all(canvas[4:6, 5:8] == -1)   # blank pad tile


def test_image_grid_rejects_colour_images():
    with pytest.raises(ValueError, match="shape"):
        eb.plotting.plot_image_grid(torch.zeros(4, 3, 8, 8))
