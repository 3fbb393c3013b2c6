"""Training configuration: one flat dataclass and two presets (``scratch``, ``reference``).

A :class:`TrainConfig` holds only JSON primitives so it round-trips through ``config.json``.
Fields left at ``None`` take their preset's value in :meth:`TrainConfig.resolved`; the resolved
config is what a run records and what ``--resume`` compares against.

Presets (docs/method.md describes the reference code; docs/training.md why ``scratch`` is what
it is). ``scratch`` changed with config schema 2; a ``config.json`` without a ``schema`` key was
written before and resolves with the schema-1 values, so an old run keeps its meaning:

=============== ============================ ======================== ==========================
field           ``reference`` (verbatim)     ``scratch``, schema 2     ``scratch``, schema 1
=============== ============================ ======================== ==========================
epochs          151 (indices 0..150)         12                        12
batch_size      32                           128                       128
optimizer       adam                         sgd (Nesterov, 0.9)       adam
weight_decay    0                            5e-4 (not BN/bias/gate)   0
lr_schedule     multistep                    onecycle (warm-up 0.25)   multistep
lr (STD path)   1e-5                         0.2 (peak)                1e-3
csg_lr          1e-3 (``lr_reg``)            0.2 (peak)                1e-3
label_smoothing 0                            see ``_SCRATCH``          0
gate_lr         1e-3                         5e-2 (Adam, constant)     5e-2
lam (λ)         1e-3                         1e-2                      1e-2
tau (τ)         0.2                          0.1                       0.1
warmup          10                           round(epochs / 6)         round(epochs / 6)
period          3                            3                         3
csg_from        2 (CSG iff epoch % 3 ≥ 2)    2                         2
align           ``start``                    ``end``                   ``end``
milestones      0.4/0.6/0.8 of (epochs − 1)  (multistep only)          0.4/0.6/0.8
std_stages      2 (layer3, layer4 + fc)      ``all``                   ``all``
csg_stages      1 (layer4 + fc + gate)       1                         1
gate_decay      True                         False                     False
=============== ============================ ======================== ==========================
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .acceleration import AMP_MODES
from .gate import PROJECTIONS

__all__ = [
    "TrainConfig",
    "PRESETS",
    "SCHEDULES",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "CONFIG_SCHEMA",
    "RESUME_MUTABLE_FIELDS",
]

PRESETS: tuple[str, ...] = ("scratch", "reference")
SCHEDULES: tuple[str, ...] = ("alternate", "joint")
LR_SCHEDULES: tuple[str, ...] = ("multistep", "onecycle", "cosine")
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
#: The version of ``config.json``: 1 (no ``schema`` key) = before the one-cycle recipe, 2 = now.
CONFIG_SCHEMA = 2
ALIGNS: tuple[str, ...] = ("start", "end")
AUGMENTS: tuple[str, ...] = ("none", "flip", "shift", "flip_shift")

#: Fields a resumed run may change without breaking exactness (where the run executes).
RESUME_MUTABLE_FIELDS: frozenset[str] = frozenset(
    {"device", "out", "data_root", "allow_no_csg", "workers"}
)

_REFERENCE: dict[str, Any] = {
    "epochs": 151,
    "batch_size": 32,
    "lr": 1e-5,
    "csg_lr": 1e-3,
    "gate_lr": 1e-3,
    "lam": 1e-3,
    "tau": 0.2,
    "warmup": 10,
    "period": 3,
    "csg_from": 2,
    "align": "start",
    "milestones": [0.4, 0.6, 0.8],
    "std_stages": 2,
    "csg_stages": 1,
    "gate_decay": True,
    "optimizer": "adam",
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "lr_schedule": "multistep",
    "lr_warmup": 0.0,
    "label_smoothing": 0.0,
}

#: ``scratch`` as it was up to config schema 1 (Adam, MultiStepLR): what old runs resolve to.
_SCRATCH_V1: dict[str, Any] = {
    "epochs": 12,
    "batch_size": 128,
    "lr": 1e-3,
    "csg_lr": 1e-3,
    "gate_lr": 5e-2,
    "lam": 1e-2,
    "tau": 0.1,
    "warmup": None,  # depends on epochs and schedule, see _scratch_warmup
    "period": 3,
    "csg_from": 2,
    "align": "end",
    "milestones": [0.4, 0.6, 0.8],
    "std_stages": "all",
    "csg_stages": 1,
    "gate_decay": False,
    "optimizer": "adam",
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "lr_schedule": "multistep",
    "lr_warmup": 0.0,
    "label_smoothing": 0.0,
}

#: ``scratch`` from config schema 2: SGD-Nesterov with a one-cycle learning rate (peak 0.2, a
#: quarter of each optimiser's own steps warming up), weight decay 5e-4 on weights only; the
#: gate keeps Adam 5e-2 (constant), λ 1e-2, τ 0.1 (docs/training.md has the measurements).
_SCRATCH: dict[str, Any] = {
    **_SCRATCH_V1,
    "lr": 0.2,
    "csg_lr": 0.2,
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "lr_schedule": "onecycle",
    "lr_warmup": 0.25,
    "label_smoothing": 0.0,
}

_PRESET_VALUES: dict[int, dict[str, dict[str, Any]]] = {
    1: {"reference": _REFERENCE, "scratch": _SCRATCH_V1},
    2: {"reference": _REFERENCE, "scratch": _SCRATCH},
}


def _scratch_warmup(epochs: int, schedule: str) -> int:
    if schedule == "joint":
        return 0
    return int(math.floor(epochs / 6 + 0.5))


@dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-serialisable).

    Fields documented as "preset" are ``None`` until :meth:`resolved` fills them from
    ``preset``; an explicit value always wins.

    Attributes:
        dataset: data set name for :func:`csg_interp.data.load_dataset` (``digits``,
            ``fashion-mnist``, ...).
        model: backbone name for :func:`csg_interp.models.build_backbone`.
        epochs: number of epochs (preset).
        out: the run directory (``config.json``, ``manifest.json``, ``metrics.jsonl``,
            ``last.pt``, ``best.pt``).
        preset: ``scratch`` (default) or ``reference`` (the reference code verbatim; meant for
            fine-tuning from ``weights``).
        schedule: ``alternate`` (whole STD and CSG epochs, as the reference code) or ``joint``
            (the paper's objective ``CE_std + csg_weight·CE_csg + lam·hinge`` every step, a
            labelled variant).
        gate: ``False`` trains the STD twin (same code, no gate, every epoch STD).
        seed: seeds initialisation, shuffling and augmentation (deterministic on CPU).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        data_root: folder of the data set's files (``None``: the loader's default).
        data_seed: the split seed passed to the loader (kept apart from ``seed`` so that runs
            with different seeds share one test split).
        train_subset: keep only this many training images (loaders that support it).
        val_size: validation images (loaders that support it; ``None``: the loader's default).
        batch_size: images per step (preset).
        widths: stage widths of the small models (``None``: the model's default).
        weights: a local state-dict file of the backbone to start from (fine-tuning); loaded
            with ``weights_only=True``.
        lr: learning rate of the STD path (preset).
        csg_lr: learning rate of the CSG path's backbone/head parameters (preset).
        gate_lr: learning rate of the gate (preset).
        lam: λ, weight of the sparsity hinge (preset).
        csg_weight: λ₁, weight of the CSG-path cross-entropy in the ``joint`` schedule.
        owner_separation: weight ``w`` of the owner-separation term added to every CSG-path
            step (the CSG epochs of ``alternate``, every step of ``joint``): each filter is
            asked to fire more on the class whose gate row opens it than on the others
            (:func:`~csg_interp.training.losses.owner_separation_loss`). An extension of this
            library, not in the paper; 0 (the default) is the paper's method. With
            ``schedule="joint"`` and ``w = 0.1`` it raised the MI score of full-accuracy
            Fashion-MNIST ResNet-8 models ×1.42 over their STD twins at −0.1 points of accuracy
            (3 seeds, docs/metrics.md).
        tau: τ, the L1-density bound of the hinge (preset).
        warmup: STD-only epochs at the start (preset).
        period: alternation period in epochs (preset).
        csg_from: in each period, the epochs whose phase is ≥ ``csg_from`` are CSG epochs
            (preset; the reference: ``epoch % 3 >= 2``).
        align: ``start``: the phase is ``epoch % period`` (reference); ``end``: phases are
            counted so that the last epoch is a CSG epoch (scratch; short runs still run CSG
            epochs).
        milestones: fractions of ``epochs − 1`` at which each optimiser's learning rate is
            multiplied by ``gamma``; counted in that optimiser's own epochs (preset).
        gamma: learning-rate decay factor at each milestone.
        std_stages: parameters the STD path trains: ``"all"`` or the last N stages of the
            features plus the head (preset). Parameters no path trains are frozen once, at
            construction.
        csg_stages: the same for the CSG path (its gate always trains) (preset).
        gate_decay: whether the gate's learning rate follows the milestones (preset).
        projection: gate projection after every CSG step, ``max`` or ``clip``.
        gate_init: initial value of every gate entry.
        augment: training augmentation, ``none``/``flip``/``shift``/``flip_shift``
            (``None``: the data set's own choice).
        allow_no_csg: accept a gated run whose schedule has no CSG epoch (otherwise an error).
        data_options: extra keyword options of the data set's loader, JSON primitives (e.g.
            ``{"image_size": 224, "skip_corrupt": true}`` for ``folder``).
        model_options: keyword arguments of a timm model (``model="timm:<name>"``), JSON
            primitives (e.g. ``{"img_size": 28, "patch_size": 4, "global_pool": "avg"}``).
        freeze_bn: replace the BatchNorm layers of the stages no path trains by
            ``FrozenBatchNorm2d`` (running statistics fixed; the reference keeps updating them).
        amp: mixed precision, ``none`` / ``bf16`` / ``fp16`` (CUDA only; with gradient scaling).
        channels_last: NHWC memory format for the network and its inputs (default on: ≈ 1.3×
            faster training steps for ResNet-8 on the project's 2-core CPU,
            benchmarks/bench_cpu_training.py; results differ from NCHW by float rounding).
        workers: processes gathering each step's batch (results do not depend on it).
        gate_only: train only the gate of the trained network given by ``weights``: every epoch
            is a CSG epoch, every other parameter and every BatchNorm statistic stays fixed
            (post-hoc differentiation, docs/training-at-scale.md).
        optimizer: the optimiser of the backbone and head parameters, ``sgd`` (momentum
            ``momentum``, Nesterov when ``nesterov``), ``adam`` or ``adamw`` (preset). The gate
            is always stepped by Adam with its own learning rate ``gate_lr`` (docs/training.md).
        momentum: SGD's momentum, Adam's and AdamW's β₁ (the gate's Adam keeps β₁ = 0.9); with
            ``lr_schedule="onecycle"`` it cycles between ``momentum − 0.05`` and
            ``momentum + 0.05`` against the learning rate, as
            ``torch.optim.lr_scheduler.OneCycleLR`` does by default (preset).
        nesterov: Nesterov momentum for ``sgd`` (preset).
        weight_decay: L2 weight decay of the convolution and linear weights; BatchNorm
            parameters, biases and the gate get none (preset). ``adamw`` decouples it.
        lr_schedule: how each optimiser's learning rate moves over its own steps:
            ``multistep`` (× ``gamma`` at ``milestones``, per own epoch, the reference code's),
            ``onecycle`` (cosine warm-up from lr/25 to lr over ``lr_warmup`` of the steps, then
            cosine annealing to lr/25e4, ``OneCycleLR``'s shape) or ``cosine`` (linear warm-up over
            ``lr_warmup`` of the steps, then cosine annealing to 0) (preset).
        lr_warmup: fraction in [0, 1) of each optimiser's own steps spent warming its learning
            rate up (``onecycle`` and ``cosine``; preset).
        label_smoothing: label smoothing ε of every cross-entropy (STD and CSG paths; the
            ``torch.nn.functional.cross_entropy`` argument), in [0, 1) (preset).
        schema: the ``config.json`` schema; a file without one was written before schema 2 and
            its preset fields resolve with the values of that time.

    Example:
        >>> config = TrainConfig(dataset="digits", model="smallcnn", epochs=6).resolved()
        >>> config.gate_lr, config.lam, config.tau, config.warmup
        (0.05, 0.01, 0.1, 1)
        >>> config.optimizer, config.lr_schedule, config.lr
        ('sgd', 'onecycle', 0.2)
    """

    dataset: str = "fashion-mnist"
    model: str = "resnet8"
    epochs: int | None = None
    out: str | None = None
    preset: str = "scratch"
    schedule: str = "alternate"
    gate: bool = True
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    data_seed: int = 0
    train_subset: int | None = None
    val_size: int | None = None
    batch_size: int | None = None
    widths: list[int] | None = None
    weights: str | None = None
    lr: float | None = None
    csg_lr: float | None = None
    gate_lr: float | None = None
    lam: float | None = None
    csg_weight: float = 1.0
    owner_separation: float = 0.0
    tau: float | None = None
    warmup: int | None = None
    period: int | None = None
    csg_from: int | None = None
    align: str | None = None
    milestones: list[float] | None = None
    gamma: float = 0.1
    std_stages: int | str | None = None
    csg_stages: int | str | None = None
    gate_decay: bool | None = None
    projection: str = "max"
    gate_init: float = 0.5
    augment: str | None = None
    allow_no_csg: bool = False
    data_options: dict[str, Any] | None = None
    model_options: dict[str, Any] | None = None
    freeze_bn: bool = False
    amp: str = "none"
    channels_last: bool = True
    workers: int = 0
    gate_only: bool = False
    optimizer: str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    lr_schedule: str | None = None
    lr_warmup: float | None = None
    label_smoothing: float | None = None
    schema: int = CONFIG_SCHEMA
    _resolved: bool = field(default=False, repr=False, compare=False)

    # ----------------------------------------------------------------- presets
    def resolved(self) -> "TrainConfig":
        """A copy with every preset field filled in and every value validated.

        Raises:
            ValueError: for an unknown preset/schedule or an out-of-range value.
        """
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if self.schema not in _PRESET_VALUES:
            raise ValueError(
                f"config schema {self.schema!r} is not known to this version of csg_interp "
                f"(known: {', '.join(map(str, _PRESET_VALUES))}); upgrade csg_interp to read it"
            )
        values = dataclasses.asdict(self)
        values.pop("_resolved")
        for key, default in _PRESET_VALUES[self.schema][self.preset].items():
            if values[key] is None:
                values[key] = default
        if values["warmup"] is None:
            values["warmup"] = _scratch_warmup(int(values["epochs"]), values["schedule"])
        if values["widths"] is not None:
            values["widths"] = [int(w) for w in values["widths"]]
        values["milestones"] = [float(m) for m in values["milestones"]]
        if values["gate_only"]:
            if not values["gate"] or values["schedule"] != "alternate":
                raise ValueError("--gate-only trains a gate: it needs the gate (no --no-gate) and "
                                 "--schedule alternate")
            if not values["weights"]:
                raise ValueError("--gate-only needs the trained network: --weights PATH (a state "
                                 "dict, a run's last.pt or an exported network)")
            values.update(warmup=0, period=1, csg_from=0)  # every epoch trains the gate
        config = TrainConfig(**values, _resolved=True)
        config.validate()
        return config

    @property
    def is_resolved(self) -> bool:
        return self._resolved

    def validate(self) -> None:
        """Check every resolved value; raise ``ValueError`` saying what to change."""
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {self.schedule!r}; use 'alternate' (whole STD/CSG epochs, the "
                "reference code) or 'joint' (the paper's summed objective)"
            )
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ValueError(
                "batch_size must be an integer ≥ 2 (BatchNorm needs 2 samples), "
                f"got {self.batch_size!r}"
            )
        for name in ("lr", "csg_lr", "gate_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("lam", "csg_weight", "owner_separation"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
        if self.owner_separation > 0 and (not self.gate or self.gate_only):
            raise ValueError(
                "owner_separation trains the gated features of a CSG model; it needs the gate "
                "and does nothing with gate_only: set owner_separation=0 (no --owner-separation)"
            )
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau is an L1-density bound and must lie in [0, 1], got {self.tau}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in (0, 1], got {self.gamma}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer ≥ 0, got {self.warmup!r}")
        if not isinstance(self.period, int) or self.period < 1:
            raise ValueError(f"period must be an integer ≥ 1, got {self.period!r}")
        if not isinstance(self.csg_from, int) or not 0 <= self.csg_from < self.period:
            raise ValueError(
                f"csg_from must be an integer in [0, period) = [0, {self.period}), "
                f"got {self.csg_from!r}"
            )
        if self.align not in ALIGNS:
            raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {self.align!r}")
        if any(not 0.0 < m <= 1.0 for m in self.milestones) or self.milestones != sorted(
            self.milestones
        ):
            raise ValueError(
                "milestones are increasing fractions of the epochs in (0, 1], "
                f"got {self.milestones}"
            )
        for name in ("std_stages", "csg_stages"):
            value = getattr(self, name)
            if value != "all" and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be 'all' or a positive integer, got {value!r}")
        if self.projection not in PROJECTIONS:
            raise ValueError(
                f"unknown projection {self.projection!r}; use one of {', '.join(PROJECTIONS)}"
            )
        if not 0.0 <= self.gate_init <= 1.0:
            raise ValueError(f"gate_init must lie in [0, 1], got {self.gate_init}")
        if self.augment is not None and self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.train_subset is not None and self.train_subset < 2:
            raise ValueError(f"train_subset must be ≥ 2 images, got {self.train_subset}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an integer ≥ 0, got {self.workers!r}")
        if self.model_options is not None and not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a dict of timm model options, got {self.model_options!r}")
        if self.data_options is not None and not isinstance(self.data_options, dict):
            raise ValueError(f"data_options must be a dict of loader options, got {self.data_options!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}"
            )
        if not (math.isfinite(self.lr_warmup) and 0.0 <= self.lr_warmup < 1.0):
            raise ValueError(
                "lr_warmup is the fraction of each optimiser's steps spent warming up and must "
                f"lie in [0, 1) (a warm-up no longer than the run), got {self.lr_warmup}"
            )
        if not (math.isfinite(self.label_smoothing) and 0.0 <= self.label_smoothing < 1.0):
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0.0):
            raise ValueError(f"weight_decay must be a finite number ≥ 0, got {self.weight_decay}")
        if not (math.isfinite(self.momentum) and 0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.optimizer == "sgd" and self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov needs a momentum > 0; set momentum or nesterov=False")
        if self.lr_schedule == "onecycle" and not 0.05 <= self.momentum <= 0.95:
            raise ValueError(
                "with lr_schedule 'onecycle' the momentum cycles over momentum ± 0.05 and must "
                f"lie in [0.05, 0.95], got {self.momentum}"
            )

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON primitives."""
        values = dataclasses.asdict(self)
        values.pop("_resolved")
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], resolve: bool = True) -> "TrainConfig":
        """Build from a dict (``config.json``); unknown keys are an error.

        Raises:
            ValueError: naming the unknown keys.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"_resolved"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown training option(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values = dict(values)
        values.setdefault("schema", 1)  # written before the schema existed: the old presets
        config = cls(**values)
        return config.resolved() if resolve else config

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a ``config.json``.

        Raises:
            FileNotFoundError: if the file is missing.
            ValueError: if it is not valid JSON or holds unknown options.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: not a run directory written by csg-interp train"
            )
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}); the run directory is damaged"
            ) from error
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of training options")
        return cls.from_dict(values)

    def differences(self, other: "TrainConfig", ignore: frozenset[str] = frozenset()) -> list[str]:
        """Names of the fields whose values differ (except ``ignore``)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in ignore and mine[k] != theirs.get(k))
