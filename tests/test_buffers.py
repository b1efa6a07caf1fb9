"""Chain starts: the replay buffer (reinitialization fraction, capacity and FIFO order, generator control) and
persistent chains (every chain back, in order, no draws); errors."""

import pytest
import torch

import ebmbook as eb

ReplayBuffer = eb.buffers.ReplayBuffer
PersistentChains = eb.buffers.PersistentChains


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


def test_persistent_chains_continue_where_they_stopped(gen):
    x0 = torch.randn(6, 1, 2, 2, generator=gen, dtype=torch.float64)
    chains = PersistentChains(x0)
    assert len(chains) == 6 and chains.event_shape == (1, 2, 2) and chains.dtype == torch.float64
    before = gen.get_state()
    a = chains.sample(6, generator=gen)
    assert torch.equal(a, x0) and torch.equal(gen.get_state(), before)   # every chain, in order, no draws
    a.add_(1.0)                                                          # a copy: the chains stay put
    assert torch.equal(chains.sample(6, generator=gen), x0)
    moved = x0 + torch.arange(6.0, dtype=torch.float64).view(6, 1, 1, 1)
    chains.push(moved)
    chains.push(moved + 1)                                               # each push replaces all chains
    assert torch.equal(chains.sample(6, generator=gen), moved + 1) and len(chains) == 6
    x0.add_(5.0)                                                         # the start was copied too
    assert torch.equal(chains.sample(6, generator=gen), moved + 1)


def test_member_starts_keep_each_members_chains_apart(gen):
    starts = eb.buffers.MemberStarts([eb.buffers.PersistentChains(torch.full((4, 2), float(s)))
                                      for s in range(3)])
    x = starts.sample(12)
    assert torch.equal(x[:, 0], torch.arange(3.0).repeat_interleave(4)) and len(starts) == 4
    starts.push(x + 10)
    assert torch.equal(starts.members[2].sample(4), torch.full((4, 2), 12.0))
    with pytest.raises(ValueError, match="multiple of the 3 members"):
        starts.sample(10)
    with pytest.raises(TypeError, match="one per member"):
        eb.buffers.MemberStarts([])
    with pytest.raises(ValueError, match="same event shape"):
        eb.buffers.MemberStarts([eb.buffers.ReplayBuffer(4, (2,)), eb.buffers.ReplayBuffer(4, (3,))])


@pytest.mark.parametrize("call, error, words", [
    (lambda: ReplayBuffer(0, (2,)), ValueError, "capacity"),
    (lambda: ReplayBuffer(True, (2,)), ValueError, "capacity"),
    (lambda: ReplayBuffer(10, (2,), reinit_fraction=1.5), ValueError, "reinit_fraction"),
    (lambda: ReplayBuffer(10, (2,), low=1.0, high=-1.0), ValueError, "low < high"),
    (lambda: ReplayBuffer(10, (2,), low=float("-inf")), ValueError, "low"),
    (lambda: ReplayBuffer(10, ()), ValueError, "event_shape"),
    (lambda: ReplayBuffer(10, (2, 0)), ValueError, "event_shape"),
    (lambda: ReplayBuffer(10**9, (1, 28, 28)), ValueError, "GiB"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.zeros(3, 3)), ValueError, "shape"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.zeros(0, 2)), ValueError, "empty"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.zeros(3, 2, dtype=torch.long)), TypeError, "floating point"),
    (lambda: ReplayBuffer(10, (2,)).push(torch.full((3, 2), float("nan"))), FloatingPointError, "step_size"),
    (lambda: ReplayBuffer(10, (2,)).sample(0, generator=eb.make_generator(0)), ValueError, "n must be"),
    (lambda: ReplayBuffer(10, (2,)).sample(4, generator=None), TypeError, "make_generator"),
    (lambda: PersistentChains(torch.zeros(0, 2)), ValueError, "empty"),
    (lambda: PersistentChains(torch.zeros(4, 2, dtype=torch.long)), TypeError, "floating point"),
    (lambda: PersistentChains(torch.zeros(4)), ValueError, "shape"),
    (lambda: PersistentChains(torch.full((4, 2), float("inf"))), FloatingPointError, "diverged"),
    (lambda: PersistentChains(torch.zeros(4, 2)).sample(8, generator=eb.make_generator(0)), ValueError,
     "4 persistent chains"),
    (lambda: PersistentChains(torch.zeros(4, 2)).push(torch.zeros(3, 2)), ValueError, "all 4 chains"),
    (lambda: PersistentChains(torch.zeros(4, 2)).push(torch.zeros(4, 3)), ValueError, "shape"),
])
def test_bad_inputs_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()
