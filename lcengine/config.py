"""The run configuration: one typed dataclass whose fields are exactly `lcengine train`'s options.

Where each value comes from, lowest precedence first:
  1. the defaults below (None for a hyper-parameter means "the paper's value"; for arch, the
     paper's net for the dataset; for data, the dataset's shards in the data home, datahome.py);
  2. the paper's Table 5 for (dataset, arch, algo, schedule) — see paper_hyperparams.py;
  3. a preset (`--preset NAME`: lcengine/presets/NAME.toml);
  4. a config file (`--config FILE`: TOML, the same keys as the fields);
  5. options given on the command line.
`resolve` merges them, checks every value and every combination, and fills in Table 5; a field
that does not apply to the chosen rule resolves to None (so a checkpoint says what was used).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib.resources import files
from pathlib import Path

from . import datahome
from .paper_hyperparams import table5
from .rules import RULES
from .rules.target_prop import LOCAL_LOSSES, TargetProp

ALGOS = ("bp", "fa", "dfa", "tp", "dtp", "sdtp", "ao-sdtp", "usf", "brsf", "frsf", "kp")
TP_FAMILY = ("tp", "dtp", "sdtp", "ao-sdtp")
SIGN_SYMMETRY = ("usf", "brsf", "frsf")
SCHEDULES = ("alternating", "parallel")
DATASETS = ("mnist-mini", "mnist", "cifar10", "imagenet")
ARCHS = ("fc", "lc", "conv")
DEVICES = ("cpu", "gpu")
KERNELS = ("fast", "ref")
#: the paper's network family of each dataset (nets.py names nets "<family>-<arch>")
NET_OF_DATASET = {"mnist-mini": "mnist", "mnist": "mnist", "cifar10": "cifar",
                  "imagenet": "imagenet"}
#: the net when --arch is not given, and why: lc is the paper's only ImageNet net; Table 1 has
#: an fc and an lc net for MNIST and CIFAR-10 (conv is the BP baseline), fc in its first column
PAPER_ARCH = {"mnist-mini": ("fc", "the first of Table 1's MNIST nets (fc, lc)"),
              "mnist": ("fc", "the first of Table 1's MNIST nets (fc, lc)"),
              "cifar10": ("fc", "the first of Table 1's CIFAR-10 nets (fc, lc)"),
              "imagenet": ("lc", "the paper's only ImageNet net")}
#: the split each dataset is evaluated on: ILSVRC-2012's test labels were never published, so
#: ImageNet is evaluated on val (as in the paper's Table 2); lcengine prep writes these names
EVAL_SPLIT = {"mnist-mini": "test", "mnist": "test", "cifar10": "test", "imagenet": "val"}
#: config field -> the rules' hyper-parameter name (rules.make_rule takes these; the optimisers
#: take the others)
RULE_FIELDS = {"alpha": "alpha", "sigma": "sigma", "aux_units": "aux",
               "feedback_scale": "feedback_scale", "local_loss": "local_loss",
               "weight_decay": "weight_decay"}
#: which rules take each rule-specific field; every other rule must leave it None
APPLIES = {
    "schedule": TP_FAMILY,
    "inv_lr": TP_FAMILY, "inv_beta1": TP_FAMILY, "inv_beta2": TP_FAMILY, "inv_eps": TP_FAMILY,
    **{name: tuple(algo for algo in ALGOS if hp in RULES[algo].defaults)
       for name, hp in RULE_FIELDS.items()},
}
#: AO-SDTP's auxiliary output size: 512 in the paper's CIFAR runs (§3.2), MNIST's not stated
AUX_UNITS = RULES["ao-sdtp"].defaults["aux"]
#: KP's weight decay λ unless asked otherwise (the source's value, rules/kp.py)
KP_WEIGHT_DECAY = RULES["kp"].defaults["weight_decay"]
#: the TP family's local losses unless asked otherwise: summed over units, as the DTP code does
LOCAL_LOSS = TargetProp.defaults["local_loss"]


class ConfigError(ValueError):
    """A bad value or combination; the message names where it came from, in one line."""


def _opt(default, kind, help, choices=None, check=None):
    """A field with what its click option and its checks need. `check` = (predicate, wording)."""
    return field(default=default, metadata={"kind": kind, "help": help, "choices": choices,
                                            "check": check})


_POSITIVE = (lambda v: v > 0, "must be > 0")
_AT_LEAST_1 = (lambda v: v >= 1, "must be >= 1")
_NON_NEGATIVE = (lambda v: v >= 0, "must be >= 0")
_BETA = (lambda v: 0 <= v < 1, "must be in [0, 1)")


@dataclass
class TrainConfig:
    # what to train
    algo: str = _opt("bp", str, "learning rule", ALGOS)
    schedule: str | None = _opt(None, str, "TP family only: alternate whole inverse and forward "
                                "epochs, or update both every batch [default: alternating, the "
                                "paper's better one]", SCHEDULES)
    dataset: str = _opt("mnist-mini", str, "dataset; mnist-mini is embedded, the others are "
                        "read from --data", DATASETS)
    data: str | None = _opt(None, Path, "directory of prepared shards (lcengine prep) [default: "
                            f"DATA_HOME/DATASET; DATA_HOME is ${datahome.ENV} or a per-user "
                            "directory, see `lcengine info`]")
    arch: str | None = _opt(None, str, "the paper's fully-connected, locally-connected or conv "
                            "net for the dataset [default: fc; lc for imagenet]", ARCHS)
    width: float = _opt(1.0, float, "multiply every hidden layer's units/channels", check=_POSITIVE)
    # how long, how, where
    epochs: int = _opt(10, int, "epochs (alternating TP: one epoch = an inverse pass plus a "
                       "forward pass over the training set)", check=_AT_LEAST_1)
    batch_size: int = _opt(32, int, "minibatch size (not stated in the paper)", check=_AT_LEAST_1)
    limit_train: int | None = _opt(None, int, "train on only the first N images of each epoch's "
                                   "shuffled order (whole batches)", check=_AT_LEAST_1)
    limit_test: int | None = _opt(None, int, "evaluate on only the first N test images",
                                  check=_AT_LEAST_1)
    train_eval_images: int = _opt(10000, int, "train error is measured after each epoch on the "
                                  "first N training images, unaugmented; 0 = all",
                                  check=_NON_NEGATIVE)
    seed: int = _opt(0, int, "seed of initialisation, shuffling, augmentation and noise",
                     check=_NON_NEGATIVE)
    device: str = _opt("cpu", str, "where to compute", DEVICES)
    kernels: str = _opt("fast", str, "the device's fast op faces, or the NumPy references", KERNELS)
    workers: int = _opt(0, int, "data worker processes (0: one prefetch thread)",
                        check=_NON_NEGATIVE)
    threads: int = _opt(1, int, "threads of BLAS, the Numba kernels and the LC layers; 1 "
                        "because spinning threads collapse (measured 10-100x slower) when the "
                        "cores are shared; raise it on a machine of your own", check=_AT_LEAST_1)
    out: str | None = _opt(None, Path, "run directory to create [default: runs/<setting>-<time>]")
    explode_factor: float = _opt(100.0, float, "stop when the task loss exceeds this multiple of "
                                 "chance level ln(classes)", check=_POSITIVE)
    # the forward ("model") Adam
    lr: float | None = _opt(None, float, "Adam learning rate [default: Table 5]", check=_POSITIVE)
    beta1: float | None = _opt(None, float, "Adam β1 [default: Table 5]", check=_BETA)
    beta2: float | None = _opt(None, float, "Adam β2 [default: Table 5]", check=_BETA)
    eps: float | None = _opt(None, float, "Adam ε [default: Table 5]", check=_POSITIVE)
    # the inverse Adam (TP family)
    inv_lr: float | None = _opt(None, float, "inverse Adam learning rate [default: Table 5]",
                                check=_POSITIVE)
    inv_beta1: float | None = _opt(None, float, "inverse Adam β1 [default: Table 5]", check=_BETA)
    inv_beta2: float | None = _opt(None, float, "inverse Adam β2 [default: Table 5]", check=_BETA)
    inv_eps: float | None = _opt(None, float, "inverse Adam ε [default: Table 5]", check=_POSITIVE)
    # the rule's own
    alpha: float | None = _opt(None, float, "DTP/TP: step size of the penultimate target "
                               "[default: Table 5]", check=_POSITIVE)
    sigma: float | None = _opt(None, float, "TP family: std of the inverse-training noise "
                               "[default: Table 5]", check=_NON_NEGATIVE)
    local_loss: str | None = _opt(None, str, "TP family: the local losses ||h − ĥ||² summed over "
                                  "a layer's units (sum, the DTP code's) or averaged (mean, "
                                  f"TensorFlow's mean_squared_error) [default: {LOCAL_LOSS}]",
                                  choices=LOCAL_LOSSES)
    aux_units: int | None = _opt(None, int, f"AO-SDTP: auxiliary output units [default: "
                                 f"{AUX_UNITS}]", check=_AT_LEAST_1)
    feedback_scale: float | None = _opt(None, float, "FA/DFA/KP: feedback weights ~ U(±scale); "
                                        "usf/brsf/frsf: their magnitudes those of U(±scale) "
                                        "[default: each layer's Glorot limit]", check=_POSITIVE)
    weight_decay: float | None = _opt(None, float, "KP: W and B shrink by (1 − λ) every step "
                                      f"[default: {KP_WEIGHT_DECAY:g}, measured: docs/rules.md]",
                                      check=_NON_NEGATIVE)

    @property
    def net(self) -> str:
        """The nets.py architecture name, e.g. "mnist-fc"."""
        return f"{NET_OF_DATASET[self.dataset]}-{self.arch}"

    @property
    def eval_split(self) -> str:
        """The split whose error is the "test" error of the records: test, or ImageNet's val."""
        return EVAL_SPLIT[self.dataset]

    @property
    def phases(self) -> tuple[str, ...]:
        """What one epoch does, in order (rule.gradients' phase of each pass)."""
        if self.schedule == "alternating":
            return ("inverse", "forward")
        return ("both",) if self.schedule == "parallel" else ("forward",)

    def setting(self) -> str:
        """A short name of the setting: dataset-arch-algo[-schedule]."""
        return "-".join(p for p in (self.dataset, self.arch, self.algo, self.schedule) if p)

    def rule_hp(self) -> dict:
        return {hp: getattr(self, name) for name, hp in RULE_FIELDS.items()
                if getattr(self, name) is not None}

    def to_toml(self) -> str:
        """The config as TOML that `--config` reads back (None fields are left out)."""
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


FIELDS = {f.name: f for f in fields(TrainConfig)}


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "nan")
    return str(value)


class Origins:
    """Where each value came from, to name it in an error: "--lr" or "run.toml: lr"."""

    def __init__(self):
        self.source = {}

    def __call__(self, name) -> str:
        source = self.source.get(name)
        if source is None:
            return name
        if source == "command line":
            return "--" + name.replace("_", "-")
        return f"{source}: {name}"


KIND_WORDS = {int: "an integer", float: "a number", str: "a string", Path: "a path"}


def coerce(name: str, value, where: str):
    """`value` (a command-line string or a TOML value) as field `name`'s type, checked."""
    meta = FIELDS[name].metadata
    kind = meta["kind"]
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError                      # TOML true/2.0 are not counts
        if kind in (int, float):
            value = kind(value)
        elif not isinstance(value, str):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not {KIND_WORDS[kind]}") from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(meta['choices'])}")
    check = meta["check"]
    if check and not check[0](value):
        raise ConfigError(f"{where}: {value!r} {check[1]}")
    return value


def read_toml(path: Path, label: str | None = None) -> dict:
    """A config file's values, each checked; errors name the file and the key."""
    label = label or str(path)
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such config file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{label}: not readable TOML ({err})") from None
    values = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"{label}: unknown key {key!r}; the keys are the fields of "
                              f"`lcengine train --help` ({', '.join(FIELDS)})")
        values[name] = coerce(name, value, f"{label}: {key}")
    return values


def shipped_tomls(package: str, folder: str) -> dict[str, Path]:
    """The TOML files in `folder` of installed `package`, by name (the file name less .toml)."""
    directory = files(package) / folder
    return {Path(p.name).stem: Path(str(p)) for p in directory.iterdir()
            if p.name.endswith(".toml")}


def presets() -> dict[str, Path]:
    return shipped_tomls("lcengine", "presets")


def read_preset(name: str) -> dict:
    known = presets()
    if name not in known:
        raise ConfigError(f"--preset {name!r}: no such preset; choose one of "
                          f"{', '.join(sorted(known))}")
    return read_toml(known[name], f"preset {name} ({known[name]})")


def resolve(layers: list[tuple[str, dict]]) -> tuple[TrainConfig, list[str]]:
    """Merge `layers` [(source name, {field: value})], lowest precedence first, check the
    combination, fill in the paper's values. Returns the config and notes on chosen defaults."""
    given, origin = {}, Origins()
    for source, values in layers:
        for name, value in values.items():
            given[name] = value
            origin.source[name] = source
    config = TrainConfig(**given)
    _check_combination(config, origin)
    notes = _dataset_defaults(config)
    if config.algo in TP_FAMILY and config.schedule is None:
        config.schedule = "alternating"
    if config.algo in TP_FAMILY and config.local_loss is None:
        config.local_loss = LOCAL_LOSS
    net = NET_OF_DATASET[config.dataset]
    paper, where = table5(net, config.arch, config.algo, config.schedule)
    if config.dataset == "mnist-mini":
        where += "; mnist-mini uses MNIST's values"
    filled = [k for k, v in paper.items() if getattr(config, k) is None]
    for name in filled:
        setattr(config, name, paper[name])
    if filled:
        notes.append(f"{', '.join(filled)} from {where}")
    if config.algo == "ao-sdtp" and config.aux_units is None:
        config.aux_units = AUX_UNITS
        notes.append(f"aux_units {AUX_UNITS}, as in the paper's CIFAR-10 runs (§3.2)")
    if config.algo == "kp" and config.weight_decay is None:
        config.weight_decay = KP_WEIGHT_DECAY
        notes.append(f"weight_decay {KP_WEIGHT_DECAY:g}, Akrout et al.'s (rules/kp.py)")
    return config, notes


def _dataset_defaults(config: TrainConfig) -> list[str]:
    """Fill in the paper's net for the dataset and the data home's shards; say so."""
    notes = []
    if config.arch is None:
        config.arch, why = PAPER_ARCH[config.dataset]
        notes.append(f"arch {config.arch}: {why}")
    if config.data is None and config.dataset != "mnist-mini":
        config.data = str(datahome.prepared_dir(config.dataset))
        notes.append(f"data {config.data}: the data home ({datahome.home_origin()})")
    return notes


def _check_combination(config: TrainConfig, origin: Origins) -> None:
    for name, algos in APPLIES.items():
        if getattr(config, name) is not None and config.algo not in algos:
            raise ConfigError(f"{origin(name)}: {config.algo} takes no {name} "
                              f"(only {', '.join(algos)} do)")
    if config.dataset == "imagenet" and config.arch == "fc":
        raise ConfigError(f"{origin('arch')}: the paper has no fully-connected ImageNet net; "
                          "use --arch lc or conv")
    if config.dataset == "mnist-mini":
        if config.data is not None:
            raise ConfigError(f"{origin('data')}: mnist-mini is embedded and takes no --data")
    elif config.data is not None and not Path(config.data).is_dir():
        raise ConfigError(f"{origin('data')}: {config.data}: no such directory")
