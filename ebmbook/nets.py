"""Learnable energies: small networks E_θ that map a batch (n, *event_shape) to energies (n,).

The dtype rule: a net computes in the dtype of its parameters (float32 unless converted
with ``net.double()``). Inputs of another floating dtype are cast to it, and the energies
come back in the input's dtype, as for every other energy of the book. So a float64 grid,
the recommended ground truth, works with a float32 net: ``eb.grid`` still sums in float64,
while each energy value carries float32 precision. Convert the net with ``.double()`` when
the energies themselves must be float64. Integer inputs are refused, never cast.

Initialization: with a ``generator``, every weight and bias is drawn from it with PyTorch's
default law for ``nn.Linear`` and ``nn.Conv2d``, U(−1/√fan_in, 1/√fan_in), layer by layer,
and so are the start vectors of spectral normalization's power iteration; the global random
state is neither read nor changed, and the same seed gives the same network (on the
generator's device). Without one, PyTorch's global random state is used, as ``nn.Linear`` does.

See chapter: "Training by contrastive divergence" (chapters/contrastive_divergence.ipynb).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ._contracts import choice, count, points, positive
from .device import check_generator

__all__ = ["MLPEnergy", "MLPEnsemble", "ConditionalMLPEnergy", "NoiseConditionalEnergy", "ConvEnergy"]

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "softplus": nn.Softplus}


class _SpectralNorm(nn.Module):
    """W / σ(W), σ the largest singular value of W viewed as (out, fan_in), by power iteration.

    The computation of ``torch.nn.utils.parametrizations.spectral_norm`` (one iteration per
    forward in training mode, none in eval mode, 15 at the start), with its start vectors
    u, v ~ N(0, I) drawn from ``generator`` (the global random state when None).
    """

    def __init__(self, weight: Tensor, generator: torch.Generator | None):
        super().__init__()
        mat = weight.detach().flatten(1)                                  # (out, fan_in)
        device = generator.device if generator is not None else weight.device
        u, v = (nn.functional.normalize(torch.randn(k, generator=generator, device=device, dtype=weight.dtype),
                                        dim=0, eps=1e-12).to(weight.device) for k in mat.shape)
        self.register_buffer("_u", u)
        self.register_buffer("_v", v)
        self._power_method(mat, 15)

    @torch.no_grad()
    def _power_method(self, mat: Tensor, n_iterations: int) -> None:
        for _ in range(n_iterations):
            self._u = nn.functional.normalize(torch.mv(mat, self._v), dim=0, eps=1e-12)
            self._v = nn.functional.normalize(torch.mv(mat.H, self._u), dim=0, eps=1e-12)

    def forward(self, weight: Tensor) -> Tensor:
        mat = weight.flatten(1)
        if self.training:
            self._power_method(mat, 1)
        return weight / torch.vdot(self._u, torch.mv(mat, self._v))


def _layer(cls: type, *args, generator: torch.Generator | None, spectral_norm: bool, **kwargs) -> nn.Module:
    """A linear or conv layer, drawn from ``generator`` (U(±1/√fan_in)) and optionally spectrally normalized."""
    if generator is None:
        layer = cls(*args, **kwargs)                                      # PyTorch's init, global random state
    else:
        layer = nn.utils.skip_init(cls, *args, **kwargs)                  # no draws from the global state
        bound = 1 / math.sqrt(layer.weight[0].numel())
        with torch.no_grad():
            for p in (layer.weight, layer.bias):
                u = torch.empty(p.shape, device=generator.device, dtype=p.dtype)
                p.copy_(u.uniform_(-bound, bound, generator=generator))
    if spectral_norm:
        # unsafe=True skips the registration's trial forward, which would run a 16th iteration
        parametrize.register_parametrization(layer, "weight", _SpectralNorm(layer.weight, generator), unsafe=True)
    return layer


class MLPEnergy(nn.Module):
    """A small learnable energy: an MLP from (n, d) to (n,) with SiLU (Swish) activations.

        E_θ(x) = w_Lᵀ σ(… σ(W₁x + b₁) …) + b_L

    Args:
        dim: input dimension d.
        hidden: widths of the hidden layers.
        spectral_norm: wrap every linear layer in spectral normalization.
        generator: draws the initial weights (see the module's docstring); None uses the
            global random state.
        activation: "silu" (Swish, smooth, the default), "relu" or "softplus"; for 8x8 images
            flatten them to d = 64 first.

    Input (n, d) of any floating dtype (see the dtype rule); output (n,) in the input's dtype.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128), *, spectral_norm: bool = False,
                 generator: torch.Generator | None = None, activation: str = "silu"):
        super().__init__()
        widths = [count(dim, "dim"), *(count(h, "every hidden width") for h in hidden), 1]
        choice(activation, "activation", _ACTIVATIONS)
        if generator is not None:
            check_generator(generator)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [_layer(nn.Linear, a, b, generator=generator, spectral_norm=spectral_norm),
                       _ACTIVATIONS[activation]()]
        self.net = nn.Sequential(*layers[:-1])
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        points(x, dim=self.dim)
        return self.net(x.to(self.net[0].bias.dtype)).squeeze(1).to(x.dtype)        # (n, 1) -> (n,)


class MLPEnsemble(nn.Module):
    """m independent MLP energies run as one batched network: several seeds for about the price of one.

        rows of block s  ->  E_θₛ(x),   s = 0 … m−1, a batch of n rows cut into m blocks of n/m

    Member s is an :class:`MLPEnergy` with weights of its own; a batch is split into m equal
    blocks of consecutive rows, and block s goes to member s (one ``torch.baddbmm`` per layer
    serves all members). Sampler steps act on each row alone, so chains of different members
    never meet. A loss that averages over the batch is the average of the members' losses, so
    one optimizer step trains each member on its own block, as if alone, with its gradient
    scaled by 1/m (Adam and the other scale-invariant optimizers take the same steps).

    On a CPU, where networks this small are bound by per-call overhead rather than by
    arithmetic, a step of m members costs far less than m steps of one network.

    Args:
        n_members: m, ≥ 1.
        dim, hidden, activation: as for :class:`MLPEnergy`.
        generator: draws the members one after another, each exactly as
            ``MLPEnergy(dim, hidden, activation=activation, generator=generator)`` would.

    Input (n, d) with n a multiple of m; output (n,). :meth:`member` gives member s as a plain
    :class:`MLPEnergy` for everything that takes other batch sizes (grids, plots, long runs).

    See chapter: "Contrastive divergence: what goes wrong" (chapters/cd_pathologies.ipynb).
    """

    def __init__(self, n_members: int, dim: int, hidden: Sequence[int] = (128, 128), *,
                 generator: torch.Generator | None = None, activation: str = "silu"):
        super().__init__()
        self.n_members = count(n_members, "n_members")
        members = [MLPEnergy(dim, hidden, generator=generator, activation=activation) for _ in range(n_members)]
        linears = [[m for m in member.net if isinstance(m, nn.Linear)] for member in members]
        # (m, fan_in, fan_out) and (m, 1, fan_out) per layer, for h @ W + b
        self.weights = nn.ParameterList(torch.stack([ls[i].weight.detach().T for ls in linears])
                                        for i in range(len(linears[0])))
        self.biases = nn.ParameterList(torch.stack([ls[i].bias.detach()[None] for ls in linears])
                                       for i in range(len(linears[0])))
        self.activation = _ACTIVATIONS[activation]()
        self.dim, self._spec = dim, (tuple(hidden), activation)

    def forward(self, x: Tensor) -> Tensor:
        n, m = points(x, dim=self.dim).shape[0], self.n_members
        if n % m:
            raise ValueError(f"an ensemble of {m} members needs a batch of a multiple of {m} rows (one block per "
                             f"member), got {n}; for other sizes use .member(s)")
        h = x.to(self.biases[0].dtype).reshape(m, n // m, self.dim)       # (m, n/m, d)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = self.activation(h)
        return h.reshape(n).to(x.dtype)                                   # (m, n/m, 1) -> (n,)

    def member(self, s: int) -> MLPEnergy:
        """Member s as a stand-alone :class:`MLPEnergy` holding a copy of its current weights."""
        if not (isinstance(s, int) and 0 <= s < self.n_members):
            raise ValueError(f"s must be an int in 0 … {self.n_members - 1}, got {s!r}")
        hidden, activation = self._spec
        net = MLPEnergy(self.dim, hidden, activation=activation, generator=torch.Generator(self.biases[0].device))
        linears = [m for m in net.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for layer, w, b in zip(linears, self.weights, self.biases):
                layer.weight.copy_(w[s].T)
                layer.bias.copy_(b[s, 0])
        return net.to(self.biases[0].dtype)


class ConditionalMLPEnergy(nn.Module):
    """A conditional energy E_θ(x, c): an MLP on the concatenation [x, c].

        E_θ(x, c) = MLP([x, c]),   x ∈ ℝᵈ, c ∈ ℝᵏ (a code, a one-hot label, a noise level's features)

    The one construction of the book for energies with a condition: call it as ``net(x, c)``,
    and use :meth:`given` to fix c and get an energy of x alone, which every sampler, grid
    tool and plot takes.

    Args:
        dim: d, the dimension of x.
        cond_dim: k, the dimension of the condition c.
        hidden, activation, spectral_norm, generator: as for :class:`MLPEnergy` (whose weights
            this draws, for input dimension d + k).

    Input x of shape (n, d) and c of shape (n, k), or (k,) for one condition shared by all rows;
    output (n,) in x's dtype.
    """

    def __init__(self, dim: int, cond_dim: int, hidden: Sequence[int] = (128, 128), *, spectral_norm: bool = False,
                 generator: torch.Generator | None = None, activation: str = "silu"):
        super().__init__()
        self.dim, self.cond_dim = count(dim, "dim"), count(cond_dim, "cond_dim")
        self.mlp = MLPEnergy(dim + cond_dim, hidden, spectral_norm=spectral_norm, generator=generator,
                             activation=activation)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        n = points(x, dim=self.dim).shape[0]
        if not isinstance(c, Tensor):
            raise TypeError(f"the condition c must be a torch.Tensor, got {type(c).__name__}")
        if c.shape not in ((n, self.cond_dim), (self.cond_dim,)):
            raise ValueError(f"the condition c must be a tensor of shape ({n}, {self.cond_dim}) or ({self.cond_dim},) "
                             f"for x of shape {tuple(x.shape)}, got {tuple(c.shape)}")
        return self.mlp(torch.cat([x, c.to(x.dtype).expand(n, self.cond_dim)], dim=1))

    def given(self, c: Tensor) -> nn.Module:
        """The energy x ↦ E_θ(x, c) for one condition c of shape (k,), a module sharing this net's parameters."""
        if not isinstance(c, Tensor) or c.shape != (self.cond_dim,):
            raise ValueError(f"given() takes one condition of shape ({self.cond_dim},), got "
                             f"{tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__}")
        return _Bound(self, c)


class _Bound(nn.Module):
    """A conditional energy with its condition fixed: x ↦ net(x, condition), sharing net's parameters."""

    def __init__(self, net: nn.Module, condition):
        super().__init__()
        self.net, self.condition = net, condition

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.condition)


class NoiseConditionalEnergy(nn.Module):
    """A noise-conditional energy E_θ(x, σ) for denoising score matching over several noise levels.

        E_θ(x, σ) = g_θ([x, log σ]) / σ,   g_θ a :class:`ConditionalMLPEnergy` with k = 1

    Its score is −∇ₓg_θ/σ: the network's own gradient stays of order one at every level, while
    the score of data blurred by N(0, σ²I) grows like 1/σ (the parametrization of Song & Ermon
    (2020), written for an energy). With the σ²-weighted loss of
    :func:`ebmbook.score_matching.denoising_score_matching` the regression target of ∇ₓg_θ
    is the unit noise ε at every level.

    Args:
        dim, hidden, activation, generator: as for :class:`MLPEnergy` (input dimension d + 1).

    Input x of shape (n, d) and sigma, a number or a tensor of shape (n,) (one level per row),
    all > 0; output (n,) in x's dtype.

    See chapter: "Score matching and noise-contrastive estimation" (chapters/score_matching.ipynb).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128), *, generator: torch.Generator | None = None,
                 activation: str = "silu"):
        super().__init__()
        self.dim = count(dim, "dim")
        self.g = ConditionalMLPEnergy(dim, 1, hidden, generator=generator, activation=activation)

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        n = points(x, dim=self.dim).shape[0]
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.shape not in ((), (n,)) or not bool((torch.isfinite(sigma) & (sigma > 0)).all()):
            raise ValueError(f"sigma must be a positive number or a tensor of shape ({n},) of positive levels, "
                             f"got {tuple(sigma.shape) if sigma.dim() else sigma.item()}")
        sigma = sigma.expand(n)
        return self.g(x, sigma.log()[:, None]) / sigma

    def at(self, sigma: float) -> nn.Module:
        """The energy x ↦ E_θ(x, σ) at one noise level σ > 0 (e.g. one level of annealed Langevin).

        A module sharing this net's parameters, so samplers treat it as the network it is.
        """
        return _Bound(self, positive(sigma, "sigma", "the noise level must be positive, e.g. 0.1"))


class ConvEnergy(nn.Module):
    """A small learnable energy for 1×8×8 images: two 3×3 convolutions, a stride-2 one, a linear head.

        E_θ(x) = wᵀ flatten(σ(conv₃(σ(conv₂(σ(conv₁ x)))))) + b,   σ = SiLU

    Args:
        channels: feature maps of the convolutions.
        spectral_norm: wrap every layer in spectral normalization.
        generator: draws the initial weights (see the module's docstring); None uses the
            global random state.

    Input shape (n, 1, 8, 8), any floating dtype (see the dtype rule); output (n,) in the input's dtype.

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
    """

    def __init__(self, channels: int = 32, *, spectral_norm: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        c = count(channels, "channels")
        if generator is not None:
            check_generator(generator)
        kw = dict(generator=generator, spectral_norm=spectral_norm)
        self.conv = nn.Sequential(_layer(nn.Conv2d, 1, c, 3, padding=1, **kw), nn.SiLU(),
                                  _layer(nn.Conv2d, c, c, 3, padding=1, **kw), nn.SiLU(),
                                  _layer(nn.Conv2d, c, 2 * c, 3, stride=2, padding=1, **kw), nn.SiLU())
        self.head = _layer(nn.Linear, 2 * c * 16, 1, **kw)

    def forward(self, x: Tensor) -> Tensor:
        if points(x).shape[1:] != (1, 8, 8):
            raise ValueError(f"ConvEnergy expects images of shape (n, 1, 8, 8), got {tuple(x.shape)}; "
                             "reshape flat digits with x.view(-1, 1, 8, 8)")
        h = self.conv(x.to(self.head.bias.dtype))                                 # (n, 2c, 4, 4)
        return self.head(h.flatten(1)).squeeze(1).to(x.dtype)             # (n,)
