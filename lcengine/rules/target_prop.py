"""The target-propagation loop shared by TP, DTP, SDTP and AO-SDTP (paper §1.3–1.6, Algorithm 1).

Each layer learns from two local losses; the dependence of one layer's loss on the other layers'
parameters is ignored (targets are constants).

Learned inverses (paper §1.3). g_l maps layer l's output back to h_{l−1}:
    g_l(y) = tanh(V_l y + c_l),   built by `layer.inverse(rng)` (dense: V of shape n_{l−1} × n_l;
    LC: a transposed LC with its own untied weights, paper §1.8).
    They exist for l = 2..L−1; layer 1 needs none (nothing below it learns from a target), and
    g_L only where the rule sets `top_inverse` (SDTP, AO-SDTP; DTP and TP have no g_L).

Algorithm 1, as `gradients` runs it:
    1. forward:   h_l = σ_l(W_l h_{l−1} + b_l),  l = 1..L                      (`net.forward`)
    2. targets:   ĥ_{L−1} from the rule (`penultimate_target`), then for l = L−2..1
                  ĥ_l = h_l − g_{l+1}(h_{l+1}) + g_{l+1}(ĥ_{l+1})   (eq. 2; `target_below`)
    3. inverses:  for each g_l: h̃_{l−1} = h_{l−1} + ε, ε ~ N(0, σ²), and
                  L_l^inv = ||r_l − g_l(f_l(h̃_{l−1}))||²,  r_l = h_{l−1} (denoising: SDTP,
                  AO-SDTP) or r_l = h̃_{l−1} (noise-preserving: DTP, TP, as the DTP code does);
                  f_l is a constant here.
    4. forward:   L_l = ||h_l − ĥ_l||² for l < L;  layer L learns the task loss (softmax CE).

Resolved ambiguities (paper §6):
  * ||·||² sums over units and averages over the batch (the DTP code's `mse`); the factor 2 of
    its derivative is kept (`ops.tanh_regression`: dL/da = 2 (h − t)(1 − h²) / N), i.e. the loss
    is exactly the paper's ||·||², not ½||·||². hp `local_loss = "mean"` divides every local
    loss (forward and inverse, not the task loss) by the layer's unit count, as TensorFlow's
    `mean_squared_error` does. Adam is blind to that scale except through ε, so the two readings
    differ only where ε is not negligible, e.g. Table 5's inverse ε = 1e-3.
  * phase "both" computes steps 3 and 4 from the same parameters (the parallel schedule: one
    inverse and one forward update per minibatch); "inverse" / "forward" compute only one of them
    (the alternating schedule: the trainer runs whole epochs of each, inverse epoch first).
  * Hidden layers must be tanh (the regression op assumes h = tanh(a)); the top is the identity
    followed by the softmax in the loss.
"""

from __future__ import annotations

from .base import Rule, Step

LOCAL_LOSSES = ("sum", "mean")     # ||·||² over a layer's units: summed, or averaged


class TargetProp(Rule):
    defaults = {"local_loss": "sum"}
    denoising = False          # step 3: reconstruct the clean h (True) or the corrupted h̃ (False)
    top_inverse = False        # whether a learned g_L exists

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        for l in range(1, self.L):
            if self.act(l).name != "tanh":
                raise ValueError(f"rule {self.name!r}: layer {l} is followed by "
                                 f"{self.act(l).name!r}; "
                                 "the target-propagation rules need tanh hidden layers")
        if self.hp["local_loss"] not in LOCAL_LOSSES:
            raise ValueError(f"rule {self.name!r}: local_loss must be one of "
                             f"{', '.join(LOCAL_LOSSES)}, not {self.hp['local_loss']!r}")
        last = self.L if self.top_inverse else self.L - 1
        self.inverses = {l: self.layer(l).inverse(rng) for l in range(2, last + 1)}

    def inverse_params(self) -> dict:
        return {f"inv.{l - 1}.{k}": v for l, g in self.inverses.items()
                for k, v in g.params.items()}

    # --- g_l and what it reads ---------------------------------------------------------------
    def code(self, l, h_below, a=None):
        """What g_l reads of layer l's output for input h_{l−1}: h_l = σ_l(a_l) (a_l if known)."""
        if a is None:
            a = self.layer(l).forward(h_below)[0]
        return self.act(l)(a)

    def g_pre(self, l, y):
        """(V_l y + c_l, cache): the pre-activation of g_l(y) = tanh(V_l y + c_l)."""
        return self.inverses[l].forward(y)

    def g_weight_grads(self, l, da, cache) -> dict:
        grads = self.layer_weight_grads(self.inverses[l], da, cache)
        return {f"inv.{l - 1}.{k}": g for k, g in grads.items()}

    def g(self, l, y):
        return self.ops.tanh(self.g_pre(l, y)[0])

    def difference_target(self, l, h, y, y_hat):
        """ĥ_l = h_l − g_{l+1}(y) + g_{l+1}(ŷ), y = layer l+1's output and ŷ its target (eq. 2)."""
        return self.ops.difference_target(h, self.g_pre(l + 1, y)[0], self.g_pre(l + 1, y_hat)[0])

    def local_loss(self, h, t):
        """(||h − t||², its gradient with respect to a, h = tanh(a)), summed or averaged over
        units (hp local_loss), averaged over the batch."""
        loss, da = self.ops.tanh_regression(h, t)
        if self.hp["local_loss"] == "mean":
            units = h.size // h.shape[0]
            da *= 1.0 / units
            loss = loss / units
        return loss, da

    # --- step 2: targets -----------------------------------------------------------------------
    def penultimate_target(self, trace, labels):
        raise NotImplementedError

    def target_below(self, l, trace, h_hat_above):
        """ĥ_l from ĥ_{l+1}: the difference target (eq. 2)."""
        return self.difference_target(l, trace.h[l], trace.h[l + 1], h_hat_above)

    def targets(self, trace, labels) -> list:
        """[None, ĥ_1, …, ĥ_{L−1}] (indexed by the paper's l)."""
        h_hat = [None] * self.L
        h_hat[self.L - 1] = self.penultimate_target(trace, labels)
        for l in range(self.L - 2, 0, -1):
            h_hat[l] = self.target_below(l, trace, h_hat[l + 1])
        return h_hat

    # --- steps 3 and 4 -------------------------------------------------------------------------
    def gradients(self, x, labels, phase="both") -> Step:
        self.check_phase(phase)
        trace = self.net.forward(x)                                             # step 1
        loss, e = self.task_loss(trace, labels)
        forward, inverse, info = {}, {}, {}
        if phase in ("inverse", "both"):
            inverse = self.inverse_gradients(trace, info)                       # step 3
        if phase in ("forward", "both"):
            forward = self.forward_gradients(trace, labels, e, info)            # steps 2, 4
        return Step(loss, forward, inverse, info)

    def inverse_gradients(self, trace, info) -> dict:
        grads = {}
        sigma = self.hp["sigma"]
        for l in self.inverses:
            h = trace.h[l - 1]
            h_tilde = h + self.rng.normal_like(h, sigma)                # h̃_{l−1} = h_{l−1} + ε
            a_rec, cache = self.g_pre(l, self.code(l, h_tilde))                 # g_l(f_l(h̃_{l−1}))
            r = h if self.denoising else h_tilde
            info[f"inv.{l - 1}"], da = self.local_loss(self.ops.tanh(a_rec), r)
            self.collect(grads, self.g_weight_grads(l, da, cache))
        return grads

    def forward_gradients(self, trace, labels, e, info) -> dict:
        h_hat = self.targets(trace, labels)
        grads = {}
        self.collect(grads, self.weight_grads(self.L, e, trace))                # top: task loss
        for l in range(1, self.L):
            info[f"fwd.{l - 1}"], da = self.local_loss(trace.h[l], h_hat[l])    # ||h_l − ĥ_l||²
            self.collect(grads, self.weight_grads(l, da, trace))
        return grads
