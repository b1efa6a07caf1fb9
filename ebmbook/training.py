"""The training loop that the contrastive-divergence chapter writes by hand, for homework and reuse.

One iteration, line for line as in the chapter:

1. draw a data batch x⁺;
2. draw the chains' starting points from ``starts``: the batch itself when ``starts`` is None
   (CD-k), :class:`~ebmbook.buffers.PersistentChains` (persistent CD) or a
   :class:`~ebmbook.buffers.ReplayBuffer` (short-run chains, mostly restarted where earlier
   chains stopped);
3. run k sampler steps with :func:`ebmbook.samplers.run_chain` to get x⁻;
4. take an optimizer step on :func:`ebmbook.losses.contrastive_divergence` (plus, optionally,
   :func:`ebmbook.losses.kl_term`), and push x⁻ back to the starts.

Random numbers are drawn in this order every iteration: the batch indices, the chain starts,
then the sampler's draws. A run stops with :class:`TrainingDiverged`, naming the likely causes,
when the loss is not finite or an energy of the batch or of the samples passes ±10⁴.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import losses, samplers
from ._contracts import count, non_negative, points, positive
from .device import check_generator

__all__ = ["History", "TrainingDiverged", "train"]

# |E| this large at a data point or a sample means the energies are running away
_MAX_ABS_ENERGY = 1e4

_CAUSES = ("likely causes: a learning rate too large for the optimizer (try half), a sampler step_size "
           "too large for the energy's curvature (the chains fly off), or no regularizer on the "
           "energies (set alpha > 0, e.g. 0.1, or use spectral normalization)")


class TrainingDiverged(FloatingPointError):
    """Raised when the loss is not finite or the energies pass ±10⁴; the message names the likely causes.

    See chapter: "Contrastive divergence: what goes wrong" (chapters/cd_pathologies.ipynb).
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

    See chapter: "Contrastive divergence: what goes wrong" (chapters/cd_pathologies.ipynb).
    """

    loss: list[float]
    energy_data: list[float]
    energy_model: list[float]
    eval_iters: list[int]
    evals: list[float | tuple[float, ...]]
    samples: Tensor


def train(energy: nn.Module, x_data: Tensor, *, step: Callable, optimizer: torch.optim.Optimizer, n_steps: int,
          n_iters: int, batch_size: int, generator: torch.Generator, starts=None,
          scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, alpha: float = 0.0,
          kl_weight: float | None = None, entropy_weight: float = 0.0, evaluate: Callable | None = None,
          eval_every: int = 100, progress: bool = False) -> History:
    """Train ``energy`` on ``x_data`` by contrastive divergence; returns the :class:`History`.

        θ ← optimizer step on ∇θ [mean E(x⁺) − mean E(x⁻) + α(mean E(x⁺)² + mean E(x⁻)²) + w L_KL]

    Args:
        energy: the learnable energy, an ``nn.Module`` (n, *event_shape) -> (n,).
        x_data: the training set, shape (N, *event_shape), on the device of the energy.
        step: the sampler step with everything but the state bound, e.g.
            ``functools.partial(eb.samplers.mala_step, net, step_size=0.01, generator=gen)``.
        optimizer: an optimizer over the energy's parameters, e.g.
            ``torch.optim.Adam(net.parameters(), lr=1e-3)``.
        n_steps: sampler steps per iteration (k), ≥ 1.
        n_iters: iterations, ≥ 1.
        batch_size: data points and chains per iteration.
        generator: source of the batches (and of the chain starts), on the data's device.
        starts: where the chains start: None (CD-k: at the batch),
            ``eb.buffers.PersistentChains(x0)`` (persistent CD) or ``eb.buffers.ReplayBuffer(...)``
            (short-run), or any object with ``sample(n, generator=...)``, ``push(x)`` and ``len()``.
        scheduler: a learning-rate scheduler of ``optimizer``, stepped once per iteration.
        alpha: weight of the squared-energy regularizer.
        kl_weight: weight w of :func:`ebmbook.losses.kl_term`, or None (no KL term). With a
            number, the last of the k steps is the differentiable ULA step, with the η of
            ``step`` (its ``step_size`` keyword), and its output serves as x⁻. ``kl_weight=0.0``
            runs that same sampler with the same random draws and no term: the like-for-like
            control of a run with w > 0.
        entropy_weight: λ of the KL term's nearest-neighbour entropy, against a fresh sample of
            the starts (leave-one-out while they are empty, or for CD-k). Not for an
            :class:`~ebmbook.nets.MLPEnsemble`, whose members' samples would be neighbours.
        evaluate: called with no argument every ``eval_every`` iterations and after the last
            (e.g. the exact test NLL on a grid); its float, or its floats (e.g. one per member
            of an ensemble) as a tuple, is recorded.
        eval_every: see ``evaluate``.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`History`.

    Raises:
        TrainingDiverged: the loss became non-finite or the energies passed ±10⁴ (the message
            names the likely causes).

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    if not isinstance(energy, nn.Module):
        raise TypeError(f"energy must be an nn.Module with learnable parameters, got {type(energy).__name__}")
    points(x_data, "x_data")
    if not callable(step):
        raise TypeError("step must be a sampler step with the energy bound, e.g. "
                        "functools.partial(eb.samplers.mala_step, net, step_size=0.01, generator=gen)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("optimizer must be a torch optimizer over the energy's parameters, "
                        "e.g. torch.optim.Adam(net.parameters(), lr=1e-3)")
    n_steps, n_iters, batch_size = count(n_steps, "n_steps"), count(n_iters, "n_iters"), count(batch_size, "batch_size")
    eval_every = count(eval_every, "eval_every")
    check_generator(generator, x_data.device)
    if starts is not None and not all(callable(getattr(starts, m, None)) for m in ("sample", "push")):
        raise TypeError("starts must be None (CD-k), eb.buffers.PersistentChains(x0) or eb.buffers.ReplayBuffer(...), "
                        f"an object with sample(n, generator=...) and push(x); got {type(starts).__name__}")
    shape, device = tuple(getattr(starts, "event_shape", x_data.shape[1:])), getattr(starts, "device", x_data.device)
    if shape != tuple(x_data.shape[1:]) or device != x_data.device:
        raise ValueError(f"the starts hold points of shape {shape} on {device}, the data {tuple(x_data.shape[1:])} "
                         f"on {x_data.device}; make them alike")
    alpha = non_negative(alpha, "alpha")
    kl = kl_weight is not None                         # the last step is the differentiable one
    kl_weight, entropy_weight = non_negative(kl_weight or 0.0, "kl_weight"), non_negative(entropy_weight, "entropy_weight")
    if entropy_weight > 0 and (not kl or getattr(energy, "n_members", 1) > 1):
        raise ValueError("entropy_weight > 0 needs kl_weight set, and a single network: in an ensemble the "
                         "members' samples would count as each other's neighbours")
    eta = getattr(step, "keywords", {}).get("step_size")                 # η of the KL term's last step
    if kl:
        positive(eta, "step.keywords['step_size']", "kl_weight takes the KL step's η from the sampler step: "
                 "step=functools.partial(eb.samplers.mala_step, net, step_size=η, generator=gen)")

    history = History([], [], [], [], [], x_data[:0])
    seen: list[Tensor] = []

    def recorded(x: Tensor) -> Tensor:                 # the energy, keeping E(x⁺) and E(x⁻) for History
        seen.append(energy(x))
        return seen[-1]

    bar = tqdm(range(1, n_iters + 1), desc="training", disable=not progress)
    for it in bar:
        x_pos = x_data[torch.randint(len(x_data), (batch_size,), generator=generator, device=x_data.device)]
        x0 = x_pos if starts is None else starts.sample(batch_size, generator=generator)
        x_neg = _run_chains(step, x0, n_steps - kl, energy, it)     # (batch_size, *event_shape)
        if kl:                                         # the last step keeps its graph: θ learns through it
            # the entropy's reference is drawn whenever the step runs (even at w = 0 or λ = 0): same draws
            reference = starts.sample(batch_size, generator=generator) if starts is not None and len(starts) else None
            x_last = samplers.differentiable_langevin_step(energy, x_neg, step_size=eta, generator=generator)
            if kl_weight > 0:                          # the control (w = 0) needs the step's draws, not the term
                kl_loss = losses.kl_term(energy, x_last, entropy_weight=entropy_weight, reference=reference)
            x_neg = x_last.detach()
        seen.clear()
        loss = losses.contrastive_divergence(recorded, x_pos, x_neg, alpha=alpha)
        if kl_weight > 0:
            loss = loss + kl_weight * kl_loss
        _check_divergence(history, loss.detach(), *(e.detach() for e in seen), it)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if starts is not None:
            starts.push(x_neg)                         # these chains continue later
        if evaluate is not None and (it % eval_every == 0 or it == n_iters):
            history.eval_iters.append(it)
            value = evaluate()
            value = float(value) if not isinstance(value, (tuple, list)) else tuple(float(v) for v in value)
            history.evals.append(value)
            bar.set_postfix(loss=f"{history.loss[-1]:.3g}", eval=str(value)[:40])
    return history._replace(samples=x_neg)


def _run_chains(step: Callable, x0: Tensor, n_steps: int, energy: nn.Module, it: int) -> Tensor:
    """x0 after n_steps sampler steps; a sampler that fails on non-finite energies means divergence."""
    try:
        return x0 if n_steps == 0 else samplers.run_chain(step, x0, n_steps=n_steps, keep_trajectory=False).state.x
    except (FloatingPointError, ValueError) as err:
        with torch.no_grad():
            finite = bool(torch.isfinite(energy(x0)).all())
        if finite and not isinstance(err, FloatingPointError):
            raise                                      # a plain mistake, not a divergence
        raise TrainingDiverged(f"iteration {it}: the chains diverged or started where the energy is not "
                               f"finite ({err}); {_CAUSES}") from err


def _check_divergence(history: History, loss: Tensor, e_pos: Tensor, e_neg: Tensor, it: int) -> None:
    """Record the loss and mean energies (one device sync); raise if they are not finite or too large."""
    stats = torch.stack([loss, e_pos.mean(), e_neg.mean(), torch.cat([e_pos, e_neg]).abs().max()]).tolist()
    if not all(math.isfinite(v) for v in stats) or stats[3] > _MAX_ABS_ENERGY:
        raise TrainingDiverged(f"iteration {it}: the loss is {stats[0]:.4g}, |E| reaches {stats[3]:.3g} "
                               f"(bound {_MAX_ABS_ENERGY:g}; mean E data {stats[1]:.4g}, samples {stats[2]:.4g}); "
                               f"{_CAUSES}")
    for values, v in zip(history[:3], stats):
        values.append(v)
