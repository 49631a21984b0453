"""DFA: direct feedback alignment (Nøkland 2016; paper §1.2).

The output error e = ∂L/∂a_L (N, K) goes straight to every hidden layer through a fixed random
B_l (units of layer l × K):

    δ_L = e,    δ_l = (e B_lᵀ) ⊙ σ_l'(a_l)   for l = L−1, …, 1,    ∂W_l = Σ_n δ_l h_{l−1}ᵀ

Resolved ambiguities (paper §6.4, NOT STATED there): B_l is uniform on ±s_l with the Glorot
scale s_l = √(6 / (M_l + K)) of an (M_l × K) matrix, M_l = prod(layer l's output shape) (an LC
layer's whole (O, P, Q) output, flattened), unless `feedback_scale` is given. B_l is never stored:
`backend.ops.random_feedback` hashes each entry from a per-layer seed, so memory stays flat even
for the ImageNet net (where the paper's stored B ran out of memory) and a checkpoint holds only
the seeds ("seed.{l-1}" for l = 1..L−1). The top layer learns from e itself, as in BP. The
seeds are also kept as Python ints (`self.seeds`), so a step never reads them back from the GPU.
"""

from __future__ import annotations

import math

from .bp import BP


class DFA(BP):
    name = "dfa"
    defaults = {"feedback_scale": None}

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        for l in range(1, self.L):
            seed = int(rng.uniform((), 0, 2.0 ** 62, dtype="float64"))
            self.fixed[f"seed.{l - 1}"] = self.xp.asarray(seed, dtype="uint64")
        self.seeds = self.host_seeds()

    def host_seeds(self) -> dict:
        """The seeds as Python ints, read once here (on a GPU, at start and after a resume)."""
        return {key: int(value) for key, value in self.fixed.items()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.seeds = self.host_seeds()

    def error_at(self, l, trace, delta_above, e):
        """e B_lᵀ, reshaped to h_l's shape."""
        shape = self.layer(l).out_shape
        M, K = math.prod(shape), e.shape[1]
        scale = self.hp["feedback_scale"] or math.sqrt(6.0 / (M + K))
        feedback = self.ops.random_feedback(e, self.seeds[f"seed.{l - 1}"], M, scale)
        return feedback.reshape((e.shape[0],) + tuple(shape))
