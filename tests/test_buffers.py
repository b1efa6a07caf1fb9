"""Replay buffer: reinitialization fraction, capacity and FIFO order, generator control, errors."""

import pytest
import torch

import ebmbook as eb

ReplayBuffer = eb.buffers.ReplayBuffer


def test_empty_buffer_gives_noise_in_the_box(gen):
    buf = ReplayBuffer(100, (2,), low=-2.0, high=3.0)
    x = buf.sample(5000, generator=gen)
    assert x.shape == (5000, 2) and len(buf) == 0
    assert x.min() >= -2.0 and x.max() <= 3.0
    # uniform on [−2, 3]: mean 0.5, sd 5/√12 ≈ 1.44, so the mean's standard error is ≈ 0.02
    assert (x.mean(0) - 0.5).abs().max() < 0.1


def test_reinit_fraction_is_honoured(gen):
    buf = ReplayBuffer(500, (2,), reinit_fraction=0.05)
    buf.push(torch.full((500, 2), 10.0))                   # stored points lie far outside the noise box
    x = buf.sample(1000, generator=gen)
    from_noise = (x.abs() <= 1).all(1)
    assert int(from_noise.sum()) == 50
    assert (x[~from_noise] == 10.0).all()
    buf0 = ReplayBuffer(10, (2,), reinit_fraction=0.0)
    buf0.push(torch.full((10, 2), 10.0))
    assert (buf0.sample(64, generator=gen) == 10.0).all()


def test_capacity_and_first_in_first_out(gen):
    buf = ReplayBuffer(8, (1,), reinit_fraction=0.0)
    buf.push(torch.arange(5.0)[:, None])
    assert len(buf) == 5
    buf.push(torch.arange(5.0, 12.0)[:, None])             # 12 pushed, the 4 oldest overwritten
    assert len(buf) == 8
    assert sorted(buf.data[:, 0].tolist()) == list(range(4, 12))
    buf.push(torch.arange(100.0, 120.0)[:, None])          # more than the capacity: keep the last 8
    assert sorted(buf.data[:, 0].tolist()) == list(range(112, 120))
    # sampling draws only stored rows, all of them eventually
    got = buf.sample(4000, generator=gen)[:, 0]
    assert set(got.tolist()) == set(range(112, 120))


def test_sample_is_a_copy_and_generator_driven():
    buf = ReplayBuffer(16, (1, 2, 2))
    buf.push(torch.randn(16, 1, 2, 2, generator=eb.make_generator(0)))
    a = buf.sample(40, generator=eb.make_generator(5))
    b = buf.sample(40, generator=eb.make_generator(5))
    assert a.shape == (40, 1, 2, 2) and torch.equal(a, b)
    a.add_(1.0)
    assert not torch.equal(buf.sample(40, generator=eb.make_generator(5)), a)


@pytest.mark.parametrize("call, error, words", [
    (lambda: ReplayBuffer(0, (2,)), ValueError, "capacity"),
    (lambda: ReplayBuffer(10, (2,), reinit_fraction=1.5), ValueError, "reinit_fraction"),
    (lambda: ReplayBuffer(10, (2,), low=1.0, high=-1.0), ValueError, "low < high"),
    (lambda: ReplayBuffer(10, ()), ValueError, "event_shape"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.zeros(3, 3)), ValueError, "shape"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.full((3, 2), float("nan"))), FloatingPointError, "step_size"),
    (lambda: ReplayBuffer(10, (2,)).sample(0, generator=eb.make_generator(0)), ValueError, "n must be"),
    (lambda: ReplayBuffer(10, (2,)).sample(4, generator=None), TypeError, "make_generator"),
])
def test_bad_inputs_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()
