"""Learning rules, one per file: `make_rule(name, net, hp, rng)` builds one by its name.

    bp       backpropagation                       bp.py
    fa       feedback alignment                    fa.py
    dfa      direct feedback alignment             dfa.py
    tp       vanilla target propagation            tp.py
    dtp      difference target propagation         dtp.py
    sdtp     simplified DTP                        sdtp.py
    ao-sdtp  SDTP with an auxiliary output         ao_sdtp.py
    usf      uniform sign-concordant feedback      usf.py
    brsf     sign feedback, magnitudes per batch   brsf.py
    frsf     sign feedback, fixed magnitudes       frsf.py
    kp       Kolen-Pollack learned feedback        kp.py

The TP family shares its loop (`target_prop.py`), the sign-symmetry family (usf, brsf, frsf) its
feedback (`sign_symmetry.py`); FA, DFA, the sign-symmetry family and KP are BP with another
feedback path.
"""

from __future__ import annotations

from .ao_sdtp import AOSDTP
from .base import PHASES, Rule, Step
from .bp import BP
from .brsf import BRSF
from .dfa import DFA
from .dtp import DTP
from .fa import FA
from .frsf import FRSF
from .kp import KP
from .sdtp import SDTP
from .tp import TP
from .usf import USF

RULES = {cls.name: cls for cls in (BP, FA, DFA, TP, DTP, SDTP, AOSDTP, USF, BRSF, FRSF, KP)}


def make_rule(name: str, net, hp: dict | None, rng) -> Rule:
    """The rule called `name` (one of RULES) for `net`, with hyper-parameters `hp` (see each
    rule's `defaults`) and `rng` (a backend Rng) for its fixed random arrays, inverses and noise."""
    try:
        cls = RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}") from None
    return cls(net, dict(hp or {}), rng)


__all__ = ["RULES", "PHASES", "Rule", "Step", "make_rule"]
