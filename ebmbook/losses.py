"""Training objectives for energy-based models; each returns a scalar to minimize.

Maximum likelihood for p_θ(x) = exp(−E_θ(x)) / Z(θ) has the gradient

    ∇θ NLL = E_data[∇θ E_θ(x)] − E_model[∇θ E_θ(x)],

so a loss whose θ-gradient estimates it is mean E_θ(x⁺) − mean E_θ(x⁻), with data points x⁺
and model samples x⁻ treated as constants: data energies are pushed down, the energies of
the model's own samples pushed up.

Losses take samples; they never own a sampler. The one exception in spirit is
:func:`kl_term`, which needs the *last* sampler step to be differentiable, so it takes the
positions before that step and performs it itself, with the graph kept.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .device import check_generator
from .energies import Energy, evaluate

__all__ = [
    "contrastive_divergence",
    "cd_from_energies",
    "frozen_energy",
    "differentiable_langevin_step",
    "nn_entropy",
    "kl_term",
    "kl_from_step",
]


def _check_batch(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, *event_shape) with n ≥ 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {x.dtype}; use .float()")


def _check_weight(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def contrastive_divergence(energy: Energy, x_data: Tensor, x_model: Tensor, *, alpha: float = 0.0) -> Tensor:
    """The contrastive-divergence objective, with the optional energy regularizer of Du & Mordatch:

        L = mean E(x⁺) − mean E(x⁻) + α (mean E(x⁺)² + mean E(x⁻)²)

    ``x_model`` is detached: the samples are constants, so ∇θL (at α = 0) is the Monte Carlo
    estimate of ∇θ NLL when x⁻ ~ p_θ, and the CD-k / PCD / short-run estimate otherwise.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x_data: data batch x⁺, shape (n, *event_shape).
        x_model: model samples x⁻, shape (m, *event_shape) (m may differ from n).
        alpha: weight α ≥ 0 of the squared-energy penalty, which keeps energies near 0.

    Returns:
        A 0-dim tensor.

    See chapter: "Training by contrastive divergence".
    """
    _check_batch(x_data, "x_data")
    _check_batch(x_model, "x_model")
    if x_data.shape[1:] != x_model.shape[1:]:
        raise ValueError(f"x_data and x_model must have the same event shape, got {tuple(x_data.shape)} "
                         f"and {tuple(x_model.shape)}")
    if x_data.device != x_model.device:
        raise ValueError(f"x_data is on {x_data.device} but x_model on {x_model.device}; move them together")
    alpha = _check_weight(alpha, "alpha")
    e_data = evaluate(energy, x_data, allow_nonfinite=True)             # (n,)
    e_model = evaluate(energy, x_model.detach(), allow_nonfinite=True)  # (m,)
    return cd_from_energies(e_data, e_model, alpha)


def cd_from_energies(e_data: Tensor, e_model: Tensor, alpha: float = 0.0) -> Tensor:
    """The loss of :func:`contrastive_divergence` from energies already computed, (n,) and (m,).

    For loops that also need the energies themselves (to log or check them) and so must not
    evaluate the energy twice; ``e_model`` must come from detached samples.

    See chapter: "Training by contrastive divergence".
    """
    loss = e_data.mean() - e_model.mean()
    if alpha > 0:
        loss = loss + alpha * (e_data.square().mean() + e_model.square().mean())
    return loss


def frozen_energy(energy: Energy, x: Tensor) -> Tensor:
    """E_θ̄(x): the energy with its parameters treated as constants; gradients reach only x.

        frozen_energy(E_θ, x) = E_{stop_grad(θ)}(x)

    For an ``nn.Module`` the call goes through ``torch.func.functional_call`` with detached
    copies of the parameters (the module itself is not changed); a plain function has no
    parameters and is called as it is.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: points, shape (n, *event_shape); may carry a graph.

    Returns:
        Energies, shape (n,).

    See chapter: "Training by contrastive divergence".
    """
    if isinstance(energy, nn.Module):
        params = {k: v.detach() for k, v in energy.named_parameters()}
        buffers = dict(energy.named_buffers())
        return evaluate(lambda z: torch.func.functional_call(energy, {**params, **buffers}, (z,)), x,
                        allow_nonfinite=True)
    return evaluate(energy, x, allow_nonfinite=True)


def differentiable_langevin_step(energy: Energy, x: Tensor, *, step_size: float,
                                 generator: torch.Generator) -> Tensor:
    """One ULA step that keeps its graph, so x′ depends on θ through ∇ₓE_θ:

        x′ = x − η ∇ₓE_θ(x) + √(2η) ξ,   ξ ~ N(0, I)

    ``x`` itself is treated as a constant (earlier steps are not differentiated). Draws one
    ``randn(x.shape)`` after the gradient, as :func:`ebmbook.samplers.langevin_step` does, so
    with the same generator both give the same x′.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: positions before the step, shape (n, *event_shape).
        step_size: η > 0.
        generator: source of ξ, on the device of x.

    Returns:
        x′, shape (n, *event_shape), with a graph back to the energy's parameters.

    See chapter: "Training by contrastive divergence".
    """
    _check_batch(x, "x")
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not (0 < step_size < math.inf):
        raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")
    check_generator(generator, x.device)
    with torch.enable_grad():
        x0 = x.detach().requires_grad_(True)
        e = evaluate(energy, x0, allow_nonfinite=True)
        (g,) = torch.autograd.grad(e.sum(), x0, create_graph=True)    # (n, *event_shape), depends on θ
    xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x0.detach() - step_size * g + math.sqrt(2 * step_size) * xi


# cdist's matrix-product shortcut loses the small distances to cancellation (even to 0)
_EXACT = "donot_use_mm_for_euclid_dist"


def nn_entropy(x: Tensor, reference: Tensor | None = None, *, k: int = 1) -> Tensor:
    """Kozachenko–Leonenko nearest-neighbour estimate of the entropy of the law of x, in nats:

        Ĥ = ψ(m + 1) − ψ(k) + log c_d + (d/n) Σᵢ log εᵢ,   c_d = π^{d/2} / Γ(d/2 + 1),

    where εᵢ is the distance from xᵢ to its k-th nearest neighbour among m candidate points:
    the m reference points, or, when ``reference`` is None, the other m = n − 1 points of x
    (the leave-one-out form). Differentiable in x; the reference is treated as constant.

    Args:
        x: points, shape (n, *event_shape), flattened to d = prod(event_shape).
        reference: other samples of the same law, shape (m, *event_shape), or None.
        k: which neighbour, ≥ 1.

    Returns:
        A 0-dim tensor.

    Raises:
        ValueError: too few points, or two points coincide (log 0).

    See chapter: "Training by contrastive divergence".
    """
    _check_batch(x, "x")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int ≥ 1, got {k!r}")
    flat = x.flatten(1)                                                 # (n, d)
    n, d = flat.shape
    if reference is None:
        if n <= k:
            raise ValueError(f"need more than k={k} points for a leave-one-out estimate, got {n}")
        dist = torch.cdist(flat, flat, compute_mode=_EXACT)                 # (n, n)
        dist = dist + torch.diag(torch.full((n,), math.inf, device=x.device, dtype=dist.dtype))
        m = n - 1
    else:
        _check_batch(reference, "reference")
        if reference.shape[1:] != x.shape[1:]:
            raise ValueError(f"reference must have the event shape of x, {tuple(x.shape[1:])}, "
                             f"got {tuple(reference.shape[1:])}")
        m = reference.shape[0]
        if m < k:
            raise ValueError(f"need at least k={k} reference points, got {m}")
        dist = torch.cdist(flat, reference.detach().flatten(1), compute_mode=_EXACT)   # (n, m)
    eps = dist.topk(k, dim=1, largest=False).values[:, -1]             # (n,) k-th neighbour distance
    if not bool((eps > 0).all()):
        raise ValueError("two points coincide (a nearest-neighbour distance is 0), so log ε = −∞; "
                         "remove duplicates or add the chains' noise before estimating")
    log_c = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    digamma = torch.special.digamma
    const = (digamma(torch.tensor(float(m + 1))) - digamma(torch.tensor(float(k)))).item() + log_c
    return const + d * eps.log().mean()


def kl_term(energy: Energy, x: Tensor, *, step_size: float, generator: torch.Generator,
            entropy_weight: float = 0.0, reference: Tensor | None = None) -> Tensor:
    """The KL term of improved contrastive divergence (Du et al. 2021), minimized over θ:

        L_KL = mean E_θ̄(x′) − λ Ĥ(x′),   x′ = x − η∇ₓE_θ(x) + √(2η) ξ

    The gradient of the CD loss ignores that the samples x⁻ depend on θ through the sampler;
    this term restores the missing part for the last step: it moves θ so that the step itself
    carries samples to lower (frozen) energy, and, through the nearest-neighbour entropy Ĥ,
    keeps them spread out. The energy's parameters in E_θ̄ are frozen, so θ gets gradient
    only through x′.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x: positions before the last sampler step, shape (n, *event_shape) (a constant).
        step_size: η of that last step.
        generator: source of its noise.
        entropy_weight: λ ≥ 0; 0 leaves out the entropy term.
        reference: samples the entropy's nearest neighbours are taken from (e.g. a replay
            buffer batch), or None for the leave-one-out estimate within x′.

    Returns:
        A 0-dim tensor. Add it to :func:`contrastive_divergence` and backpropagate both.

    See chapter: "Training by contrastive divergence".
    """
    lam = _check_weight(entropy_weight, "entropy_weight")
    x_next = differentiable_langevin_step(energy, x, step_size=step_size, generator=generator)
    return kl_from_step(energy, x_next, entropy_weight=lam, reference=reference)


def kl_from_step(energy: Energy, x_next: Tensor, *, entropy_weight: float = 0.0,
                 reference: Tensor | None = None) -> Tensor:
    """The loss of :func:`kl_term` given the output x′ of :func:`differentiable_langevin_step`.

    For loops that also use x′ as their model samples.

        L_KL = mean E_θ̄(x′) − λ Ĥ(x′)

    See chapter: "Training by contrastive divergence".
    """
    loss = frozen_energy(energy, x_next).mean()
    if entropy_weight > 0:
        loss = loss - entropy_weight * nn_entropy(x_next, reference)
    return loss
