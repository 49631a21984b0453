"""FA: feedback alignment (Lillicrap et al. 2016; paper §1.2).

BP's backward pass with a fixed random B_{l+1} in place of W_{l+1}:

    δ_L = e,    δ_l = (B_{l+1} δ_{l+1}) ⊙ σ_l'(a_l),    ∂W_l = Σ_n δ_l h_{l−1}ᵀ

B_l has W_l's shape (the layer's `backward_input` takes any W-shaped array, so an LC layer gets
random untied LC feedback of its own sparsity). Resolved ambiguity (paper §6.4, distribution and
scale NOT STATED): B_l is drawn once, uniform Glorot like W_l (`layer.feedback_like(rng)`), or
uniform on ±`feedback_scale` if that hyper-parameter is set. Layer 1 needs no B (nothing below
it learns). Setting B_l = W_l gives BP exactly. State: "B.{l-1}" for l = 2..L.
"""

from __future__ import annotations

from .bp import BP


class FA(BP):
    name = "fa"
    defaults = {"feedback_scale": None}

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        for l in range(2, self.L + 1):
            self.fixed[f"B.{l - 1}"] = self.layer(l).feedback_like(rng, self.hp["feedback_scale"])

    def feedback_weights(self, l):
        return self.fixed[f"B.{l - 1}"]                                 # B_l
