"""brSF: batchwise random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016).

    B_l = |M_l| ∘ sign(W_l),    M_l ~ U(±r_l) redrawn for every minibatch

(the draw and scale: `sign_symmetry.py`). `feedback_weights(l)` runs once per layer and batch
(`BP.error_at`), so each call draws a new |M_l| from the rule's RNG and nothing is kept: the
RNG's state, which every checkpoint holds, is the whole state, and a resumed run draws the same
magnitudes as an uninterrupted one.
"""

from __future__ import annotations

from .sign_symmetry import SignSymmetry


class BRSF(SignSymmetry):
    name = "brsf"
    title = "brSF"

    def magnitude(self, l):
        return self.random_magnitude(l)                                 # |M_l|, this batch's
