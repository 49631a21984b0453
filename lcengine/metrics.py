"""Metrics: top-k error, and the alignment of a rule's weight updates with the true gradient."""

from __future__ import annotations

import math

from .ops.xp import array_module


def top_k_error(logits, labels, k: int = 1) -> float:
    """Fraction (0..1) of examples whose label is not among the k largest logits. An example
    counts as right when fewer than k logits are strictly larger than its label's (ties
    favour it)."""
    xp = array_module(logits)
    n = logits.shape[0]
    true = logits[xp.arange(n), labels][:, None]                            # (N, 1)
    # logits above the label's
    rank = (logits > true).sum(axis=1)
    return float((rank >= k).sum()) / n


def angle(u, v) -> float:
    """The angle in degrees between two arrays taken as flat vectors (float64); exactly 0 for two
    equal non-zero vectors (cos = u·v / √((u·u)(v·v)) is then exactly 1); NaN if either is zero."""
    xp = array_module(u)
    u = u.reshape(-1).astype(xp.float64)
    v = v.reshape(-1).astype(xp.float64)
    uu, vv, uv = float(u @ u), float(v @ v), float(u @ v)
    if uu == 0.0 or vv == 0.0:
        return math.nan
    cos = min(1.0, max(-1.0, uv / math.sqrt(uu * vv)))
    return math.degrees(math.acos(cos))


def alignment_angles(rule_step_forward: dict, bp_forward: dict, keys=None) -> dict:
    """{key: degrees} between each W-update of a rule and BP's gradient on the same minibatch.
    `keys` defaults to every weight ("l.W") both dicts hold, in layer order."""
    if keys is None:
        keys = sorted((k for k in bp_forward if k.endswith(".W") and k in rule_step_forward),
                      key=lambda k: int(k.split(".")[0]))
    return {k: angle(rule_step_forward[k], bp_forward[k]) for k in keys}


def alignment(rule, bp_rule, x, labels, keys=None) -> dict:
    """Both passes on one minibatch (rule's forward phase, BP's) and their angles per layer."""
    got = rule.gradients(x, labels, "forward").forward
    ref = bp_rule.gradients(x, labels, "forward").forward
    return alignment_angles(got, ref, keys)


def feedback_angles(rule) -> dict:
    """{"B.{l-1}": degrees} between each feedback array B_l a rule sends errors back through in
    W_l's place and W_l itself (FA, the sign-symmetry family, KP); {} for a rule without one.
    A rule that draws its B_l per call (brSF) draws here too: keep its RNG aside if it matters."""
    feedback = getattr(rule, "feedback_weights", None)
    if feedback is None:
        return {}
    angles = {}
    for l in range(2, rule.L + 1):
        B = feedback(l)
        if B is not None:
            angles[f"B.{l - 1}"] = angle(B, rule.layer(l).params["W"])
    return angles
