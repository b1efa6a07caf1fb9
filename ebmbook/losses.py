"""Training objectives for energy-based models, one function per idea; each returns a scalar to minimize.

Maximum likelihood for p_θ(x) = exp(−E_θ(x)) / Z(θ) has the gradient

    ∇θ NLL = E_data[∇θ E_θ(x)] − E_model[∇θ E_θ(x)],

so a loss whose θ-gradient estimates it is mean E_θ(x⁺) − mean E_θ(x⁻), with data points x⁺
and model samples x⁻ treated as constants (:func:`contrastive_divergence`): data energies are
pushed down, the energies of the model's own samples pushed up. :func:`kl_term` adds the part
of the gradient that flows through the sampler's last step.

Losses take samples; they never own a sampler. The last step that :func:`kl_term` differentiates
through is a sampler step, :func:`ebmbook.samplers.differentiable_langevin_step`.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._contracts import like, non_negative, points
from .energies import Energy, evaluate

__all__ = ["contrastive_divergence", "kl_term"]


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

    See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
    """
    like(points(x_data, "x_data"), points(x_model, "x_model"), ("x_data", "x_model"))
    alpha = non_negative(alpha, "alpha")
    e_data = evaluate(energy, x_data, allow_nonfinite=True)             # (n,)
    e_model = evaluate(energy, x_model.detach(), allow_nonfinite=True)  # (m,)
    loss = e_data.mean() - e_model.mean()
    if alpha > 0:
        loss = loss + alpha * (e_data.square().mean() + e_model.square().mean())
    return loss


def kl_term(energy: Energy, x_model: Tensor, *, entropy_weight: float = 0.0,
            reference: Tensor | None = None) -> Tensor:
    """The KL term of improved contrastive divergence (Du et al. 2021), minimized over θ:

        L_KL = mean E_θ̄(x′) − λ Ĥ(x′),   x′ = x − η∇ₓE_θ(x) + √(2η) ξ  (the last sampler step)

    The gradient of the CD loss ignores that the samples x⁻ depend on θ through the sampler.
    This term is *not* that missing part: with L_CD = KL(p_data‖p_θ) − KL(q_θ‖p_θ), the part
    CD drops is −∇θ L_KL, and improved CD adds +∇θ L_KL. It is a regularizer that moves θ so
    that the last step itself carries samples to lower (frozen) energy, towards p_θ, and,
    through the Kozachenko–Leonenko nearest-neighbour entropy Ĥ, keeps them spread out. The
    energy's parameters in E_θ̄ are frozen (detached copies; the module is not changed), so θ
    gets gradient only through x′.

    Args:
        energy: callable, (n, *event_shape) -> (n,).
        x_model: x′, shape (n, *event_shape), the output of
            :func:`ebmbook.samplers.differentiable_langevin_step`, which carries the step's graph.
        entropy_weight: λ ≥ 0; 0 leaves out the entropy term.
        reference: samples the entropy's nearest neighbours are taken from (e.g. a replay
            buffer batch), shape (m, *event_shape), or None for the leave-one-out estimate.

    Returns:
        A 0-dim tensor. Add it to :func:`contrastive_divergence` and backpropagate both.

    See chapter: "Stabilizers and improved contrastive divergence" (chapters/improved_cd.ipynb).
    """
    points(x_model, "x_model")
    if not x_model.requires_grad:
        raise ValueError("x_model carries no graph, so θ would get no gradient through the last step; make it "
                         "with eb.samplers.differentiable_langevin_step(energy, x, step_size=..., generator=...)")
    lam = non_negative(entropy_weight, "entropy_weight")
    frozen = energy
    if isinstance(energy, nn.Module):                                   # E_θ̄: detached parameters
        tensors = {**{k: v.detach() for k, v in energy.named_parameters()}, **dict(energy.named_buffers())}
        frozen = lambda z: torch.func.functional_call(energy, tensors, (z,))  # noqa: E731
    loss = evaluate(frozen, x_model, allow_nonfinite=True).mean()
    if lam > 0:
        loss = loss - lam * _nn_entropy(x_model, reference)
    return loss


# cdist's matrix-product shortcut loses the small distances to cancellation (even to 0)
_EXACT = "donot_use_mm_for_euclid_dist"


def _nn_entropy(x: Tensor, reference: Tensor | None = None) -> Tensor:
    """Kozachenko–Leonenko nearest-neighbour estimate of the entropy of the law of x, in nats:

        Ĥ = ψ(m + 1) − ψ(1) + log c_d + (d/n) Σᵢ log εᵢ,   c_d = π^{d/2} / Γ(d/2 + 1),

    where εᵢ is the distance from xᵢ (flattened to d = prod(event_shape)) to its nearest
    neighbour among m candidates: the m reference points (constants), or the other m = n − 1
    points of x. Differentiable in x; raises ValueError when two points coincide (log 0).
    """
    flat = x.flatten(1)                                                 # (n, d)
    n, d = flat.shape
    if reference is None:
        if n < 2:
            raise ValueError(f"the leave-one-out entropy needs more than one point, got {n}")
        dist = torch.cdist(flat, flat, compute_mode=_EXACT)            # (n, n)
        dist = dist + torch.diag(torch.full((n,), math.inf, device=x.device, dtype=dist.dtype))
    else:
        like(x, points(reference, "reference"), ("x_model", "reference"))
        dist = torch.cdist(flat, reference.detach().flatten(1), compute_mode=_EXACT)   # (n, m)
    eps = dist.min(dim=1).values                                       # (n,) nearest-neighbour distance
    if not bool((eps > 0).all()):
        raise ValueError("two points coincide (a nearest-neighbour distance is 0), so log ε = −∞; "
                         "remove duplicates or add the chains' noise before estimating")
    m = dist.shape[1] - (reference is None)
    log_c = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    digamma = torch.special.digamma
    const = (digamma(torch.tensor(float(m + 1))) - digamma(torch.tensor(1.0))).item() + log_c
    return const + d * eps.log().mean()
