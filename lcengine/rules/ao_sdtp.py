"""AO-SDTP: SDTP with an auxiliary output (paper §1.6, eq. 3, Algorithm 2).

The top layer's output is h_L = [o, z]: o = softmax(W_L h_{L−1} + b_L) carries the task loss,
z = tanh(W_z h_{L−1} + b_z) are random features that never learn. g_L reads both:

    g_L(o, z) = tanh(V_o o + V_z z + c)                 (= tanh(V [o; z] + c), V = [V_o V_z])
    ĥ_{L−1}   = h_{L−1} − g_L(o, z) + g_L(ô, z),   ô = onehot(y)    (the SAME z in both)
    lower layers and the denoising inverse losses as SDTP; g_L's loss uses f_L(h̃) = [o(h̃), z(h̃)].

Resolved ambiguities (paper §6.5, NOT STATED there): z's activation is tanh; W_z is fixed random
Glorot-uniform (aux × n_{L−1}) and b_z = 0 (state "W_z", "b_z"); the number of auxiliary units
`aux` defaults to 512, the paper's CIFAR size. (V_o, c) is the top layer's own inverse; V_z
("inv.{L−1}.V_z") is Glorot-uniform for the whole (n_classes + aux) → n_{L−1} map. No AO-SDTP
hyper-parameters are published; the default σ is SDTP's (Table 5, MNIST-FC, SDTP-parallel).
"""

from __future__ import annotations

import math

from .sdtp import SDTP


class AOSDTP(SDTP):
    name = "ao-sdtp"
    defaults = {**SDTP.defaults, "aux": 512}

    def __init__(self, net, hp, rng):
        super().__init__(net, hp, rng)
        top = self.layer(self.L)
        n_below, n_out, aux = math.prod(top.in_shape), math.prod(top.out_shape), int(self.hp["aux"])
        dtype = top.params["W"].dtype
        limit = math.sqrt(6.0 / (n_below + aux))
        self.fixed["W_z"] = rng.uniform((aux, n_below), -limit, limit, dtype=dtype)
        self.fixed["b_z"] = self.xp.zeros(aux, dtype=dtype)
        limit = math.sqrt(6.0 / (n_out + aux + n_below))
        self.V_z = rng.uniform((n_below, aux), -limit, limit, dtype=dtype)

    def inverse_params(self) -> dict:
        return {**super().inverse_params(), f"inv.{self.L - 1}.V_z": self.V_z}

    def z(self, h_below):
        """z = tanh(W_z h_{L−1} + b_z), the fixed random features."""
        h_flat = h_below.reshape(h_below.shape[0], -1)
        return self.ops.tanh(h_flat @ self.fixed["W_z"].T + self.fixed["b_z"])

    def code(self, l, h_below, a=None):
        if l < self.L:
            return super().code(l, h_below, a)
        return super().code(l, h_below, a), self.z(h_below)                      # h_L = [o, z]

    def top_target(self, labels, y):
        o, z = y
        return super().top_target(labels, o), z                                  # [ô, z]

    def g_pre(self, l, y):
        if l < self.L:
            return super().g_pre(l, y)
        o, z = y
        a, cache = super().g_pre(l, o)                                           # V_o o + c
        return a + (z @ self.V_z.T).reshape(a.shape), (cache, z)                 #   + V_z z

    def g_weight_grads(self, l, da, cache) -> dict:
        if l < self.L:
            return super().g_weight_grads(l, da, cache)
        cache_o, z = cache
        grads = super().g_weight_grads(l, da, cache_o)
        grads[f"inv.{l - 1}.V_z"] = da.reshape(da.shape[0], -1).T @ z
        return grads
