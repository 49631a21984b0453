"""SDTP: simplified difference target propagation (paper §1.5, Algorithm 1).

    ĥ_L     = argmin_{h_L} L(h_L) = onehot(y)             (the correct label distribution)
    ĥ_{L−1} = h_{L−1} − g_L(p) + g_L(ĥ_L),   p = softmax(h_L)
    ĥ_l = h_l − g_{l+1}(h_{l+1}) + g_{l+1}(ĥ_{l+1}),   l ≤ L−2     (eq. 2, the shared loop)
    L^inv_l = ||h_{l−1} − g_l(f_l(h̃_{l−1}))||²,  h̃ = h + N(0, σ²)    for l = 2..L (denoising)

No gradient anywhere: the penultimate target uses a learned inverse like every other layer.
Resolved ambiguities: g_L reads the softmax PROBABILITIES p (so that ĥ_L = onehot lives in the
same space; paper §6.10), and f_L(h̃) in g_L's inverse loss is likewise softmax(W_L h̃ + b_L). The
inverse loss is denoising: the clean h is reconstructed (paper App. 5.1).
Defaults: Table 5, MNIST-FC, SDTP-parallel (σ = 0.214).
"""

from __future__ import annotations

from ..layers.losses import one_hot, softmax
from .target_prop import TargetProp


class SDTP(TargetProp):
    name = "sdtp"
    defaults = {**TargetProp.defaults, "sigma": 0.214}
    denoising = True
    top_inverse = True

    def code(self, l, h_below, a=None):
        if l < self.L:
            return super().code(l, h_below, a)
        if a is None:
            a = self.layer(l).forward(h_below)[0]
        return softmax(a)                                                        # p = softmax(h_L)

    def top_target(self, labels, y):
        """ĥ_L in g_L's input space: the one-hot label."""
        return one_hot(labels, y.shape[1], y.dtype)

    def penultimate_target(self, trace, labels):
        L = self.L
        y = self.code(L, trace.h[L - 1], trace.a[L - 1])
        return self.difference_target(L - 1, trace.h[L - 1], y, self.top_target(labels, y))
