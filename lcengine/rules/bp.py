"""BP: backpropagation, the exact gradient of the task loss (paper §1.2).

    e = δ_L = ∂L/∂a_L = (softmax(h_L) − onehot(y)) / N        the output error, L = batch-mean CE
    δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ σ_l'(a_l)                      l = L−1, …, 1
    ∂L/∂W_l = Σ_n δ_l h_{l−1}ᵀ,    ∂L/∂b_l = Σ_n δ_l

`error_at(l)` (the error reaching h_l) is the one place where the feedback rules differ from BP:
FA, the sign-symmetry rules and KP send δ_{l+1} back through another W-shaped B_{l+1} in place
of W_{l+1} (`feedback_weights`), DFA sends e straight down through B_l. BP has no inverse, so
phase "inverse" only reports the loss.
"""

from __future__ import annotations

from .base import Rule, Step


class BP(Rule):
    name = "bp"
    defaults = {}

    def gradients(self, x, labels, phase="both") -> Step:
        self.check_phase(phase)
        trace = self.net.forward(x)
        loss, e = self.task_loss(trace, labels)
        if phase == "inverse":
            return Step(loss, {}, {})
        L = self.L
        delta = e                                                       # δ_L = e
        grads = {}
        self.collect(grads, self.weight_grads(L, delta, trace))
        for l in range(L - 1, 0, -1):
            error = self.error_at(l, trace, delta, e)                   # W_{l+1}ᵀ δ_{l+1}
            delta = self.act(l).backward(error, trace.a[l - 1], trace.h[l])  # ⊙ σ_l'(a_l)
            self.collect(grads, self.weight_grads(l, delta, trace))     # δ_l h_{l−1}ᵀ
        return Step(loss, grads, {})

    def error_at(self, l, trace, delta_above, e):
        """The error reaching h_l: W_{l+1}ᵀ δ_{l+1} (or B_{l+1} in place of W_{l+1}, see FA)."""
        return self.layer(l + 1).backward_input(delta_above, trace.caches[l],
                                                weights=self.feedback_weights(l + 1))

    def feedback_weights(self, l):
        """The array δ_l travels back through: None means W_l itself."""
        return None
