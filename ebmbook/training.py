"""A training loop for energy-based models by contrastive divergence, for homework and reuse.

One iteration:

1. take a data batch x⁺;
2. start n chains: at x⁺ (CD-k), where the previous iteration's chains stopped (persistent
   CD), or from a replay buffer with a fraction of fresh noise (short-run);
3. run k sampler steps with :func:`ebmbook.samplers.run_chain` to get x⁻;
4. minimize :func:`ebmbook.losses.contrastive_divergence` (plus, optionally, the KL term);
5. stop with an error naming the likely cause if the loss or the energies blow up.

The chapter writes this loop out in full before it uses :func:`train`.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import losses, samplers
from .buffers import ReplayBuffer
from .device import check_generator
from .energies import evaluate as check_energy

__all__ = ["History", "TrainingDiverged", "train", "INITS"]

INITS = ("data", "persistent", "buffer")

_CAUSES = ("likely causes: a learning rate too large for the optimizer (try half), a sampler step_size "
           "too large for the energy's curvature (the chains fly off), or no regularizer on the "
           "energies (set alpha > 0, e.g. 0.1, or use spectral normalization)")


class TrainingDiverged(FloatingPointError):
    """Raised when the loss is not finite or the energies pass the bound.

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """


class History(NamedTuple):
    """What :func:`train` records, one entry per iteration (evaluations: one per ``eval_every``).

    Attributes:
        loss: the minimized loss.
        energy_data: mean E(x⁺) of the batch.
        energy_model: mean E(x⁻) of the samples.
        eval_iters: iterations (1-based) after which ``evaluate`` was called.
        evals: what ``evaluate`` returned there.
        samples: the last x⁻, shape (n, *event_shape).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """

    loss: list[float]
    energy_data: list[float]
    energy_model: list[float]
    eval_iters: list[int]
    evals: list[float]
    samples: Tensor


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return value


def train(energy: nn.Module, x_data: Tensor, *, step: Callable, n_steps: int, n_iters: int, batch_size: int,
          generator: torch.Generator, init: str = "buffer", n_chains: int | None = None,
          buffer: ReplayBuffer | None = None, lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None,
          scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
          alpha: float = 0.0, kl_weight: float = 0.0, kl_step_size: float | None = None,
          entropy_weight: float = 0.0, evaluate: Callable[[], float] | None = None, eval_every: int = 100,
          max_abs_energy: float = 1e4, progress: bool = True) -> History:
    """Train ``energy`` on ``x_data`` by contrastive divergence; returns the :class:`History`.

        θ ← θ − lr · ∇θ [mean E(x⁺) − mean E(x⁻) + α(mean E(x⁺)² + mean E(x⁻)²) + w L_KL]

    Args:
        energy: the learnable energy, an ``nn.Module`` (n, *event_shape) -> (n,).
        x_data: the training set, shape (N, *event_shape), on the device of the energy.
        step: the sampler step with everything but the state bound, e.g.
            ``functools.partial(eb.samplers.mala_step, net, step_size=0.01, generator=gen)``.
        n_steps: sampler steps per iteration (k), ≥ 1.
        n_iters: iterations, ≥ 1.
        batch_size: data points per iteration.
        generator: source of the batches (and of the KL step's noise), on the data's device.
        init: where chains start: "data" (CD-k: at the batch), "persistent" (PCD: where the
            previous iteration's chains stopped; at random data points the first time) or
            "buffer" (short-run chains from ``buffer``, pushed back afterwards).
        n_chains: chains per iteration (default ``batch_size``); for "data" it must equal
            ``batch_size``.
        buffer: a :class:`~ebmbook.buffers.ReplayBuffer`, required for init="buffer".
        lr: Adam's learning rate when no ``optimizer`` is given.
        optimizer: an optimizer over the energy's parameters (default Adam).
        scheduler: a learning-rate scheduler of ``optimizer``, stepped once per iteration
            (e.g. ``MultiStepLR(opt, [3000], 0.1)``: a lower rate at the end damps the
            iteration-to-iteration jitter of the learned density).
        alpha: weight of the squared-energy regularizer.
        kl_weight: weight w of :func:`ebmbook.losses.kl_term`; when > 0 the last sampler step is
            the differentiable ULA step with ``kl_step_size``, and its output serves as x⁻.
        kl_step_size: η of that step.
        entropy_weight: λ of the KL term's nearest-neighbour entropy (against the buffer's
            contents, or leave-one-out without a buffer).
        evaluate: called with no argument every ``eval_every`` iterations and after the last
            (e.g. the exact test NLL on a grid); its float is recorded.
        eval_every: see ``evaluate``.
        max_abs_energy: a bound on |E| of data and samples; passing it raises.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`History`.

    Raises:
        TrainingDiverged: the loss became non-finite or the energies passed ``max_abs_energy``
            (the message names the likely causes).

    See chapter: "Training by contrastive divergence".
    """
    if not isinstance(energy, nn.Module):
        raise TypeError(f"energy must be an nn.Module with learnable parameters, got {type(energy).__name__}")
    if not isinstance(x_data, Tensor) or x_data.dim() < 2 or not x_data.is_floating_point():
        raise ValueError("x_data must be a floating-point tensor of shape (N, *event_shape)")
    if not callable(step):
        raise TypeError("step must be a sampler step with the energy bound, e.g. "
                        "functools.partial(eb.samplers.mala_step, net, step_size=0.01, generator=gen)")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    n_steps, n_iters = _int(n_steps, "n_steps", 1), _int(n_iters, "n_iters", 1)
    batch_size, eval_every = _int(batch_size, "batch_size", 1), _int(eval_every, "eval_every", 1)
    n_chains = batch_size if n_chains is None else _int(n_chains, "n_chains", 1)
    check_generator(generator, x_data.device)
    if init == "data" and n_chains != batch_size:
        raise ValueError(f"CD-k chains start at the data batch, so n_chains must equal batch_size={batch_size}")
    if init == "buffer":
        if not isinstance(buffer, ReplayBuffer):
            raise ValueError("init='buffer' needs buffer=eb.buffers.ReplayBuffer(...)")
        if buffer.event_shape != tuple(x_data.shape[1:]) or buffer.device != x_data.device:
            raise ValueError(f"the buffer holds points of shape {buffer.event_shape} on {buffer.device}, "
                             f"the data {tuple(x_data.shape[1:])} on {x_data.device}")
    if kl_weight < 0 or entropy_weight < 0 or alpha < 0:
        raise ValueError("alpha, kl_weight and entropy_weight must be non-negative")
    if kl_weight > 0 and kl_step_size is None:
        raise ValueError("kl_weight > 0 needs kl_step_size, the η of the differentiable last step")
    if not (max_abs_energy > 0):
        raise ValueError(f"max_abs_energy must be positive, got {max_abs_energy!r}")
    if optimizer is None:
        if scheduler is not None:
            raise ValueError("a scheduler needs the optimizer it schedules: pass optimizer= too")
        optimizer = torch.optim.Adam(energy.parameters(), lr=lr)

    n_data = x_data.shape[0]
    history = History([], [], [], [], [], x_data[:0])
    persistent = None
    if init == "persistent":
        persistent = x_data[torch.randint(n_data, (n_chains,), generator=generator, device=x_data.device)]
    x_model = None
    bar = tqdm(range(1, n_iters + 1), desc="training", disable=not progress)
    for it in bar:
        x_pos = x_data[torch.randint(n_data, (batch_size,), generator=generator, device=x_data.device)]
        if init == "data":
            x0 = x_pos
        elif init == "persistent":
            x0 = persistent
        else:
            x0 = buffer.sample(n_chains, generator=generator)
        n_plain = n_steps - 1 if kl_weight > 0 else n_steps
        try:
            x_before = x0 if n_plain == 0 else samplers.run_chain(
                step, x0, n_steps=n_plain, keep_trajectory=False).state.x
        except FloatingPointError as err:
            raise TrainingDiverged(f"iteration {it}: the sampler diverged ({err}); {_CAUSES}") from err
        except ValueError as err:                    # a non-finite energy where the chains start?
            with torch.no_grad():
                finite = bool(torch.isfinite(energy(x0)).all())
            if finite:
                raise
            raise TrainingDiverged(f"iteration {it}: the energy is not finite where the chains start "
                                   f"({err}); {_CAUSES}") from err

        kl = None
        if kl_weight > 0:
            reference = buffer.sample(n_chains, generator=generator) if (buffer is not None and len(buffer)) else None
            x_next = losses.differentiable_langevin_step(energy, x_before, step_size=kl_step_size,
                                                         generator=generator)
            kl = losses.kl_from_step(energy, x_next, entropy_weight=entropy_weight, reference=reference)
            x_model = x_next.detach()
        else:
            x_model = x_before

        e_pos = check_energy(energy, x_pos, allow_nonfinite=True)        # (batch_size,)
        e_neg = check_energy(energy, x_model, allow_nonfinite=True)      # (n_chains,)
        loss = losses.cd_from_energies(e_pos, e_neg, alpha)
        if kl is not None:
            loss = loss + kl_weight * kl
        stats = torch.stack([loss.detach(), e_pos.detach().mean(), e_neg.detach().mean(),
                             torch.cat([e_pos.detach(), e_neg.detach()]).abs().max()]).tolist()
        if not all(math.isfinite(v) for v in stats):
            raise TrainingDiverged(f"iteration {it}: the loss is {stats[0]} (mean E data {stats[1]}, "
                                   f"mean E samples {stats[2]}); {_CAUSES}")
        if stats[3] > max_abs_energy:
            raise TrainingDiverged(f"iteration {it}: |E| reached {stats[3]:.3g} > max_abs_energy={max_abs_energy:g} "
                                   f"(mean E data {stats[1]:.3g}, samples {stats[2]:.3g}); {_CAUSES}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()

        if init == "persistent":
            persistent = x_model
        elif init == "buffer":
            buffer.push(x_model)
        history.loss.append(stats[0])
        history.energy_data.append(stats[1])
        history.energy_model.append(stats[2])
        if evaluate is not None and (it % eval_every == 0 or it == n_iters):
            history.eval_iters.append(it)
            history.evals.append(float(evaluate()))
            if progress:
                bar.set_postfix(loss=f"{stats[0]:.3g}", eval=f"{history.evals[-1]:.4g}")
    return history._replace(samples=x_model)
