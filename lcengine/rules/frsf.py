"""frSF: fixed random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016).

    B_l = |M_l| ∘ sign(W_l),    M_l ~ U(±r_l) drawn once and kept

so B_l follows W_l's signs as they change while its magnitudes stay fixed (the draw and scale:
`sign_symmetry.py`). State: the magnitudes "M.{l-1}" for l = 2..L.
"""

from __future__ import annotations

from .sign_symmetry import SignSymmetry


class FRSF(SignSymmetry):
    name = "frsf"
    title = "frSF"

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        for l in range(2, self.L + 1):
            self.fixed[f"M.{l - 1}"] = self.random_magnitude(l)

    def magnitude(self, l):
        return self.fixed[f"M.{l - 1}"]                                 # |M_l|, fixed
