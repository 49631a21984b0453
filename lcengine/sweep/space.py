"""A search space: which `lcengine train` options a sweep draws, and from what.

A space is a TOML file whose keys are `lcengine train` options (config.TrainConfig's fields):

    lr = {log_uniform = [1e-5, 3e-4]}     # log-uniform between the two bounds
    sigma = {uniform = [0.01, 0.3]}       # uniform between the two bounds
    beta2 = [0.99, 0.999]                 # one of the listed values
    beta1 = 0.9                           # fixed

Shipped spaces (lcengine/sweep/spaces/NAME.toml) are named by NAME: `table4`, the paper's
printed Table 4 and the default, and `table4-wide`. A rule is searched over the keys it takes
(config.APPLIES): one space serves every rule. Every bound and listed value is checked like the
option itself, so a space cannot hold a value `lcengine train` would refuse.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config import APPLIES, FIELDS, ConfigError, coerce, shipped_tomls

DEFAULT_SPACE = "table4"
#: options that define the sweep itself rather than a point in its space
NOT_SEARCHABLE = ("algo", "dataset", "data", "epochs", "out", "device")
RANGES = ("log_uniform", "uniform")


@dataclass(frozen=True)
class Dimension:
    """One searched option: `kind` is "log_uniform", "uniform" or "choice"; `values` the two
    bounds or the choices."""
    name: str
    kind: str
    values: tuple

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return value in self.values
        return self.values[0] <= value <= self.values[1]

    def to_optuna(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        if self.kind == "choice":
            return CategoricalDistribution(self.values)
        return FloatDistribution(*self.values, log=self.kind == "log_uniform")

    def describe(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.values)) + "}"
        return f"{self.kind.replace('_', '-')} [{self.values[0]:g}, {self.values[1]:g}]"


@dataclass(frozen=True)
class Space:
    """The searched dimensions and the fixed values of a space, for one rule."""
    label: str
    dimensions: tuple[Dimension, ...]
    fixed: dict

    def to_json(self) -> dict:
        return {"label": self.label, "fixed": self.fixed,
                "dimensions": [[d.name, d.kind, list(d.values)] for d in self.dimensions]}

    @classmethod
    def from_json(cls, data: dict) -> "Space":
        return cls(data["label"], tuple(Dimension(n, k, tuple(v)) for n, k, v
                                        in data["dimensions"]), dict(data["fixed"]))

    def without(self, names) -> "Space":
        """The space with `names` taken out (fixed elsewhere, e.g. on the command line)."""
        return Space(self.label, tuple(d for d in self.dimensions if d.name not in names),
                     {k: v for k, v in self.fixed.items() if k not in names})

    def draw(self, count: int, seed: int) -> list[dict]:
        """`count` configurations drawn by Optuna's RandomSampler from `seed`: the same seed
        gives the same list, and a longer list starts with the shorter one."""
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        distributions = {d.name: d.to_optuna() for d in self.dimensions}
        return [{k: _plain(v) for k, v in study.ask(distributions).params.items()}
                for _ in range(count)]


def _plain(value):
    """Optuna may hand back NumPy scalars; the trial's command line and TOML want Python's."""
    return value.item() if hasattr(value, "item") else value


def shipped_spaces() -> dict[str, Path]:
    return shipped_tomls("lcengine.sweep", "spaces")


def load_space(name_or_path: str | None, algo: str) -> Space:
    """The space `name_or_path` (a shipped name or a TOML file) as it applies to `algo`."""
    name_or_path = name_or_path or DEFAULT_SPACE
    shipped = shipped_spaces()
    path = shipped.get(name_or_path, Path(name_or_path))
    label = f"space {name_or_path}" if name_or_path in shipped else str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--space {name_or_path}: no such file, nor a shipped space "
                          f"({', '.join(sorted(shipped))})") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{label}: not readable TOML ({err})") from None
    return parse_space(raw, label, algo)


def parse_space(raw: dict, label: str, algo: str) -> Space:
    dimensions, fixed = [], {}
    for key, spec in raw.items():
        name = key.replace("-", "_")
        where = f"{label}: {key}"
        if name not in FIELDS:
            raise ConfigError(f"{where}: unknown option; the keys are the fields of "
                              f"`lcengine train --help`")
        if name in NOT_SEARCHABLE:
            raise ConfigError(f"{where}: is part of the sweep's command, not of its space")
        if name in APPLIES and algo not in APPLIES[name]:
            continue                                  # e.g. inv_lr for BP
        if isinstance(spec, dict):
            dimensions.append(_range(name, spec, where))
        elif isinstance(spec, list):
            values = tuple(coerce(name, v, f"{where}[{i}]") for i, v in enumerate(spec))
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"{where}: the list of choices must be non-empty and without "
                                  "repeats")
            dimensions.append(Dimension(name, "choice", values))
        else:
            fixed[name] = coerce(name, spec, where)
    return Space(label, tuple(dimensions), fixed)


def _range(name: str, spec: dict, where: str) -> Dimension:
    if len(spec) != 1 or next(iter(spec)) not in RANGES:
        raise ConfigError(f"{where}: a table must be {{log_uniform = [low, high]}} or "
                          f"{{uniform = [low, high]}}")
    kind, bounds = next(iter(spec.items()))
    if FIELDS[name].metadata["kind"] is not float:
        raise ConfigError(f"{where}: {kind} needs a real-valued option; list the choices instead")
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{where}: {kind} takes [low, high]")
    low, high = (coerce(name, b, f"{where}.{kind}") for b in bounds)
    if not low < high:
        raise ConfigError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}: log_uniform needs low > 0")
    return Dimension(name, kind, (float(low), float(high)))
