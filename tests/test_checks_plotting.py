"""Homework checkers catch the typical mistakes with the right hint; plot helpers return their Axes."""

import base64
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import ebmbook as eb  # noqa: E402


def good_probs(energies, temperature):
    log_w = -energies / temperature
    return torch.exp(log_w - torch.logsumexp(log_w, dim=-1))


@pytest.mark.parametrize("fn, hint", [
    (lambda e, t: torch.exp(-e / t) / torch.exp(-e / t).sum(), "overflowed"),
    (lambda e, t: torch.softmax(e / t, -1), "sign is flipped"),
    (lambda e, t: torch.softmax(-e, -1), "temperature is ignored"),
    (lambda e, t: torch.softmax(-e * t, -1), "not multiply"),
    (lambda e, t: torch.exp(-(e - e.min()) / t), "sum to 1"),
])
def test_boltzmann_checker_names_the_mistake(fn, hint):
    result = eb.checks.check_boltzmann_probs(fn)
    assert not result and hint in repr(result), repr(result)


def test_boltzmann_checker_passes_a_correct_solution():
    result = eb.checks.check_boltzmann_probs(good_probs)
    assert result and repr(result).startswith("✓")


def test_checker_reports_in_place_changes_and_exceptions():
    def in_place(energies, temperature):
        energies -= energies.min()
        return good_probs(energies, temperature)

    assert "in place" in repr(eb.checks.check_boltzmann_probs(in_place))
    assert "raised ZeroDivisionError" in repr(eb.checks.check_boltzmann_probs(lambda e, t: 1 / 0))


def good_log_z(energy, low, high, n):
    h = (high - low) / n
    x = low + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    return torch.logsumexp(-energy(x[:, None]), 0) + math.log(h)


def test_log_partition_checker():
    assert eb.checks.check_log_partition_1d(good_log_z)

    def no_width(energy, low, high, n):
        return good_log_z(energy, low, high, n) - math.log((high - low) / n)

    def naive(energy, low, high, n):
        h = (high - low) / n
        x = low + h * (torch.arange(n, dtype=torch.float64) + 0.5)
        return torch.log(torch.exp(-energy(x[:, None])).sum() * h)

    assert "cell width" in repr(eb.checks.check_log_partition_1d(no_width))
    assert "logsumexp" in repr(eb.checks.check_log_partition_1d(naive))


def test_compare_uses_its_tolerance():
    cases = [("one", dict(x=torch.tensor([1.0])))]
    near = lambda x: x + 1e-3
    assert not eb.checks.compare(near, lambda x: x, cases, name="f", atol=1e-5, rtol=0)
    assert eb.checks.compare(near, lambda x: x, cases, name="f", atol=1e-2, rtol=0)


def test_plot_helpers_return_their_axes():
    fig, axes = plt.subplots(1, 3)
    assert eb.plotting.plot_energy_2d(eb.energies.banana, n=32, ax=axes[0]) is axes[0]
    assert eb.plotting.plot_density_2d(eb.energies.banana, n=32, ax=axes[1]) is axes[1]
    x = eb.data.banana(100, generator=eb.make_generator(0))
    assert eb.plotting.plot_samples(x, ax=axes[2]) is axes[2]
    assert all(ax.get_title() == "" for ax in axes)
    plt.close(fig)


def test_frame_slider_links_slider_and_frames():
    frames = []
    for k in range(3):
        fig, ax = plt.subplots()
        ax.plot([0, k])
        frames.append(eb.plotting.figure_to_png(fig))
    box = eb.plotting.frame_slider(frames, [0.5, 1, 2], description="T", alt='a line, "steeper" <each> time')
    slider, stack = box.children
    assert len(stack.children) == 3 and slider.options == ("0.5", "1", "2")
    assert all(f.startswith(b"\x89PNG") for f in frames)
    for frame, png in zip(stack.children, frames):   # each frame: the PNG as a data URL, escaped alt text
        assert base64.b64encode(png).decode() in frame.value
        assert 'alt="a line, &quot;steeper&quot; &lt;each&gt; time"' in frame.value
    with pytest.raises(ValueError, match="one value per frame"):
        eb.plotting.frame_slider(frames, [1, 2], alt="x")
    with pytest.raises(ValueError, match="alt"):
        eb.plotting.frame_slider(frames, [1, 2, 3])
    with pytest.raises(ValueError, match="PNG"):
        eb.plotting.frame_slider([b"GIF89a"], [1], alt="x")


def test_frame_slider_without_stack_swaps_frames_in_the_kernel(monkeypatch):
    """ipywidgets 7 (Colab's) has no Stack: the slider must still change the shown frame."""
    import types

    import ipywidgets

    fake = types.SimpleNamespace(**{k: getattr(ipywidgets, k) for k in dir(ipywidgets) if k != "Stack"})
    monkeypatch.setattr(eb.plotting, "widgets", fake)
    frames = [b"\x89PNG-a", b"\x89PNG-b", b"\x89PNG-c"]
    slider, shown = eb.plotting.frame_slider(frames, [1, 2, 3], alt="frames").children
    assert base64.b64encode(frames[0]).decode() in shown.value
    slider.value = "3"
    assert base64.b64encode(frames[2]).decode() in shown.value
