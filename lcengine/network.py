"""A feed-forward network: layers[l] maps h_{l-1} to a_l, activations[l] maps a_l to h_l.

Indices follow the paper with a 0-based list: layer l = 1..L is `layers[l - 1]`. The top layer's
activation is the identity, so h_L = a_L are the logits; the loss applies softmax itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .layers.losses import softmax_cross_entropy


@dataclass
class Trace:
    """Everything a forward pass computed: h[0] = x, a[l-1], h[l], caches[l-1] for l = 1..L."""
    h: list = field(default_factory=list)
    a: list = field(default_factory=list)
    caches: list = field(default_factory=list)

    @property
    def logits(self):
        return self.h[-1]


class Network:
    def __init__(self, name, layers, activations, backend, loss=softmax_cross_entropy):
        if len(layers) != len(activations):
            raise ValueError("one activation per layer")
        self.name = name
        self.layers = list(layers)
        self.activations = list(activations)
        self.backend = backend
        self.loss = loss

    def __len__(self):
        return len(self.layers)

    def forward(self, x) -> Trace:
        trace = Trace(h=[x])
        for layer, act in zip(self.layers, self.activations):
            a, cache = layer.forward(trace.h[-1])
            trace.a.append(a)
            trace.caches.append(cache)
            trace.h.append(act(a))
        return trace

    def predict(self, x):
        """Logits only, keeping no caches."""
        h = x
        for layer, act in zip(self.layers, self.activations):
            h = act(layer.forward(h)[0])
        return h

    def parameters(self) -> dict:
        """Forward parameters keyed "l.name" (l 0-based), the arrays themselves (updated in
        place)."""
        return {f"{l}.{k}": v for l, layer in enumerate(self.layers)
                for k, v in layer.params.items()}
