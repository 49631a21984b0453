"""What every learning rule shares: the `Step` it returns and the `Rule` base class.

Indices follow the paper (§1.1): layer l = 1..L is `net.layers[l - 1]`, h_0 = x, h_l = σ_l(a_l),
a_l = W_l h_{l−1} + b_l, and h_L are the logits (the top activation is the identity; the loss
applies the softmax). A trace of the forward pass holds h_l at `trace.h[l]`, a_l at
`trace.a[l - 1]` and layer l's cache at `trace.caches[l - 1]`.

Gradients are keyed like the parameters they update: layer l's forward parameters are
"{l-1}.W", "{l-1}.b" (as `Network.parameters()`), its learned inverse g_l's are "inv.{l-1}.W",
"inv.{l-1}.b". Every forward gradient is the gradient of a batch-MEAN loss, so optimisers see
the same scale whatever the rule.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

PHASES = ("forward", "inverse", "both")


@dataclass
class Step:
    """One minibatch's result: the task loss (batch-mean cross-entropy), the forward and the
    inverse gradients (dicts keyed like the parameters, of arrays, or of `DeferredGradient`s
    where a layer left one, inside `Rule.deferring_weight_gradients`), and `info` (named scalars
    worth logging, e.g. each layer's local loss). The scalars are floats or 0-d arrays of the
    backend: on a GPU they stay on the device, because reading one (`float()`) waits for it."""
    loss: float
    forward: dict
    inverse: dict
    info: dict = field(default_factory=dict)


class Rule:
    """A learning rule: turns a minibatch into gradients for a network it does not own.

    Subclasses set `name`, `defaults` (their hyper-parameters with default values) and implement
    `gradients`. Fixed random arrays that a checkpoint must restore (feedback matrices, random
    features) live in `self.fixed`; learned inverses in `self.inverse_params()`.
    """

    name = ""
    title = ""          # as the literature writes it, for tables and figures; else name.upper()
    defaults: dict = {}

    def __init__(self, net, hp: dict, rng):
        unknown = sorted(set(hp) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise ValueError(f"rule {self.name!r}: unknown hyper-parameter(s) "
                             f"{', '.join(unknown)}; it takes: {known}")
        self.net = net
        self.hp = {**self.defaults, **hp}
        self.rng = rng
        self.ops = net.backend.ops
        self.xp = net.backend.xp
        self.fixed = {}
        self.deferring = False
        self.listener = None

    # --- the interface -------------------------------------------------------------------
    def gradients(self, x, labels, phase="both") -> Step:
        raise NotImplementedError

    def forward_params(self) -> dict:
        return self.net.parameters()

    def inverse_params(self) -> dict:
        return {}

    def apply_weight_decay(self) -> None:
        """Decay some parameters in place between a step's gradients and the optimiser's update
        (`train.train_step`); only KP decays, the other rules do nothing here."""

    def state(self) -> dict:
        """Everything a checkpoint needs beyond the parameters, as a dict of arrays."""
        return dict(self.fixed)

    def load_state(self, state: dict) -> None:
        """Restore `state()` in place; the keys and shapes must match this rule's exactly."""
        missing, extra = sorted(set(self.fixed) - set(state)), sorted(set(state) - set(self.fixed))
        if missing or extra:
            raise ValueError(f"rule {self.name!r}: checkpoint state does not match "
                             f"(missing {missing}, unexpected {extra}); "
                             "was it saved by another rule?")
        for key, value in state.items():
            if tuple(value.shape) != tuple(self.fixed[key].shape):
                raise ValueError(f"rule {self.name!r}: state {key!r} has shape "
                                 f"{tuple(value.shape)}, expected {tuple(self.fixed[key].shape)}")
            self.fixed[key][...] = self.xp.asarray(value)

    # --- helpers for subclasses ----------------------------------------------------------
    @property
    def L(self) -> int:
        return len(self.net.layers)

    def layer(self, l):
        """Layer l (paper numbering, 1..L)."""
        return self.net.layers[l - 1]

    def act(self, l):
        """σ_l, the activation after layer l."""
        return self.net.activations[l - 1]

    def weight_grads(self, l, da, trace, prefix=""):
        """Gradients of layer l's parameters from dLoss/da_l, keyed "{prefix}{l-1}.{name}"."""
        grads = self.layer_weight_grads(self.layer(l), da, trace.caches[l - 1])
        return {f"{prefix}{l - 1}.{k}": g for k, g in grads.items()}

    def layer_weight_grads(self, layer, da, cache) -> dict:
        """`layer.backward_weight`, or its deferred form inside `deferring_weight_gradients`."""
        if self.deferring:
            return layer.deferred_backward_weight(da, cache)
        return layer.backward_weight(da, cache)

    @contextmanager
    def deferring_weight_gradients(self):
        """Inside the block, `gradients` leaves what a layer can defer as `DeferredGradient`s,
        for an optimiser that computes them inside its update (`train.train_step`)."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def collect(self, grads: dict, new: dict) -> None:
        """`grads.update(new)`, and `new` handed at once to the listener of
        `publishing_gradients`."""
        grads.update(new)
        if self.listener is not None:
            self.listener(new)

    @contextmanager
    def publishing_gradients(self, listener):
        """Inside the block, each layer's gradients go to `listener(grads)` as soon as they are
        computed, top layer first (a data-parallel trainer starts summing them while the layers
        below are still being computed)."""
        self.listener = listener
        try:
            yield
        finally:
            self.listener = None

    def task_loss(self, trace, labels):
        """(L, e): the batch-mean task loss (a 0-d array, see Step) and e = dL/da_L (the output
        error, already ÷ N)."""
        return self.net.loss(trace.a[-1], labels)

    @staticmethod
    def check_phase(phase):
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
