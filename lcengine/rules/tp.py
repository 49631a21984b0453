"""TP: vanilla target propagation (paper §1.3; discussed there, never run).

    ĥ_{L−1} = h_{L−1} − α ∂ℓ_n/∂h_{L−1}       (as DTP: per-example loss, see dtp.py)
    ĥ_l     = g(ĥ_{l+1}) = tanh(V_{l+1} ĥ_{l+1} + c_{l+1}),   l ≤ L−2
    L^inv_l = ||h̃_{l−1} − g_l(f_l(h̃_{l−1}))||²               (noise-preserving, as DTP)

Everything but the target recursion is DTP's; without the difference correction h_l − g(h_{l+1})
the targets carry g's reconstruction error, which is why DTP was introduced.
"""

from __future__ import annotations

from .dtp import DTP


class TP(DTP):
    name = "tp"

    def target_below(self, l, trace, h_hat_above):
        return self.g(l + 1, h_hat_above)                                       # ĥ_l = g(ĥ_{l+1})
