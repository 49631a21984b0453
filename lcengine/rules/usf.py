"""uSF: uniform sign-concordant feedback (Liao, Leibo & Poggio 2016; Xiao et al. 2018).

    B_l = s_l sign(W_l),    s_l = √(2 / (fan_in + fan_out))   (r_l / √3 with `feedback_scale`)

the sign of the current W_l at every step, times the std of W_l's Glorot-uniform initialisation
(the scale and why: `sign_symmetry.py`). On weights of equal magnitude |W_l| = c_l, B_l is
(s_l / c_l) W_l, so uSF's ∂W_l is BP's times Π_{m=l+1..L} s_m / c_m (tested). No state: B_l
is a function of W_l.
"""

from __future__ import annotations

from .sign_symmetry import SignSymmetry


class USF(SignSymmetry):
    name = "usf"
    title = "uSF"

    def magnitude(self, l):
        return self.std(l)                                              # s_l
