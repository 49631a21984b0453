"""Optimisers: update a dict of parameter arrays in place from a dict of gradients.

    Adam (Kingma & Ba 2015):  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
                              p ← p − lr · m̂ / (√v̂ + ε),  m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ)
        computed as `ops.adam_update` with the bias corrections folded into two scalars:
        step = lr √(1 − β2ᵗ) / (1 − β1ᵗ),  ε̂ = ε √(1 − β2ᵗ)  (the same update, exactly).
    SGD with momentum:        u ← μ u + g;  p ← p − lr u

`step(grads)` updates the parameters named in `grads` (a subset of `params` is fine; an unknown
name is an error) and counts one step. A gradient may be a `DeferredGradient` (the LC layers'
W, `train.train_step`): Adam has it computed inside its update, SGD asks for its value.
`state()` / `load_state()` hold the moments and the count as a dict of arrays, for checkpoints.
"""

from __future__ import annotations

import math

from .layers.base import DeferredGradient


class Optimizer:
    def __init__(self, params: dict, lr: float, backend):
        self.params = params
        self.lr = float(lr)
        self.xp = backend.xp
        self.t = 0

    def _check(self, grads):
        unknown = sorted(set(grads) - set(self.params))
        if unknown:
            raise KeyError(f"{type(self).__name__}.step: gradients for unknown parameters "
                           f"{unknown}; give this optimiser only the params it was built with")

    def _buffers(self):
        raise NotImplementedError

    def state(self) -> dict:
        out = {"t": self.xp.asarray(self.t, dtype="int64")}
        for prefix, buffers in self._buffers().items():
            out.update({f"{prefix}.{k}": v for k, v in buffers.items()})
        return out

    def load_state(self, state: dict) -> None:
        mine = self.state()
        if set(mine) != set(state):
            raise ValueError(f"{type(self).__name__}.load_state: keys differ (missing "
                             f"{sorted(set(mine) - set(state))}, "
                             f"unexpected {sorted(set(state) - set(mine))})")
        self.t = int(state["t"])
        for prefix, buffers in self._buffers().items():
            for k, v in buffers.items():
                v[...] = self.xp.asarray(state[f"{prefix}.{k}"])


class Adam(Optimizer):
    def __init__(self, params: dict, lr, beta1=0.9, beta2=0.999, eps=1e-8, *, backend):
        super().__init__(params, lr, backend)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.adam_update = backend.ops.adam_update
        self.m = {k: self.xp.zeros_like(p) for k, p in params.items()}
        self.v = {k: self.xp.zeros_like(p) for k, p in params.items()}

    def _buffers(self):
        return {"m": self.m, "v": self.v}

    def step(self, grads: dict) -> None:
        self._check(grads)
        self.t += 1
        correction2 = math.sqrt(1.0 - self.beta2 ** self.t)
        step = self.lr * correction2 / (1.0 - self.beta1 ** self.t)
        eps_hat = self.eps * correction2
        for k, g in grads.items():
            p, m, v = self.params[k], self.m[k], self.v[k]
            if isinstance(g, DeferredGradient):
                g.adam_update(p, m, v, step, self.beta1, self.beta2, eps_hat)
            else:
                self.adam_update(p, g, m, v, step, self.beta1, self.beta2, eps_hat)


class SGD(Optimizer):
    def __init__(self, params: dict, lr, momentum=0.9, *, backend):
        super().__init__(params, lr, backend)
        self.momentum = float(momentum)
        self.u = {k: self.xp.zeros_like(p) for k, p in params.items()}

    def _buffers(self):
        return {"u": self.u}

    def step(self, grads: dict) -> None:
        self._check(grads)
        self.t += 1
        for k, g in grads.items():
            if isinstance(g, DeferredGradient):
                g = g.value()
            u = self.u[k]
            u *= self.momentum
            u += g
            self.params[k] -= self.lr * u


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def make_optimizer(kind: str, params: dict, backend, **hp):
    """`kind` "adam" (hp: lr, beta1, beta2, eps) or "sgd" (hp: lr, momentum)."""
    try:
        cls = OPTIMIZERS[kind]
    except KeyError:
        raise ValueError(f"unknown optimiser {kind!r}; "
                         f"choose one of {', '.join(OPTIMIZERS)}") from None
    return cls(params, backend=backend, **hp)
