"""The sign-symmetry family (Liao, Leibo & Poggio 2016; Xiao et al. 2018), shared by uSF, brSF
and frSF: FA whose feedback B_{l+1} shares the signs of W_{l+1}, but not its magnitudes,

    δ_L = e,    δ_l = (B_{l+1} δ_{l+1}) ⊙ σ_l'(a_l),    B_l = |M_l| ∘ sign(W_l),

with B_l built from the current W_l at every step, in W's layout (`layer.backward_input` takes
any W-shaped array, so FC, LC and conv layers all get sign-concordant feedback of their own
shape). The rules differ only in the magnitudes |M_l| (`magnitude`):

    usf   a constant per layer            B_l = s_l sign(W_l)
    brsf  |M_l| redrawn every batch       B_l = |M_l| ∘ sign(W_l),  M_l ~ U(±r_l)
    frsf  |M_l| drawn once and kept       B_l = |M_l| ∘ sign(W_l),  M_l ~ U(±r_l)

Resolved ambiguity, the scale (Liao et al. use bare sign(W) with batch normalisation and their
"Batch Manhattan" update, which make it irrelevant; lcengine has neither): Xiao et al.'s code
multiplies sign(W) by the scale of the layer's own initialisation "to avoid the exploding
gradient problem" (the std √(2 / (k²·O)) of torchvision's He-normal conv init; 1/√fan_in for
its linear layers), and draws the random magnitudes from that initialisation, made positive.
lcengine's W_l is Glorot-uniform on ±r_l, r_l = √(6 / (fan_in + fan_out)) (`glorot_limit`), so
M_l ~ U(±r_l) like FA's B (drawn as |M_l| ~ U(0, r_l), the same law), and uSF's constant is
that distribution's std, s_l = r_l / √3 = √(2 / (fan_in + fan_out)) (BioTorch's scaling factor
for these rules). All three then have E[B_l²] = r_l² / 3, the second moment of W_l at the start.
`feedback_scale` replaces r_l, with the same meaning as FA's: magnitudes of U(±feedback_scale).
Layer 1 needs no B (nothing below it learns).
"""

from __future__ import annotations

import math

from .bp import BP


class SignSymmetry(BP):
    defaults = {"feedback_scale": None}

    def feedback_weights(self, l):
        W = self.layer(l).params["W"]
        return self.magnitude(l) * self.xp.sign(W)                      # |M_l| ∘ sign(W_l)

    def magnitude(self, l):
        """|M_l|: a scalar or an array of W_l's shape."""
        raise NotImplementedError

    def limit(self, l) -> float:
        """r_l: the magnitudes are those of U(±r_l), W_l's initial distribution by default."""
        return self.hp["feedback_scale"] or self.layer(l).glorot_limit()

    def random_magnitude(self, l):
        """|M_l|, M_l ~ U(±r_l), drawn as U(0, r_l) from the rule's RNG."""
        W = self.layer(l).params["W"]
        return self.rng.uniform_below(W.shape, self.limit(l), dtype=W.dtype)

    def std(self, l) -> float:
        """s_l = r_l / √3, the std of U(±r_l)."""
        return self.limit(l) / math.sqrt(3.0)
