"""Run directories: build the network a config describes, load a trained run, export it.

A run directory (written by :func:`csg_interp.training.fit`) holds:

* ``config.json`` -- the resolved :class:`~csg_interp.training.TrainConfig`;
* ``manifest.json`` -- config, package versions, git revision, data set and class names, status
  and final result;
* ``metrics.jsonl`` -- one JSON row per epoch;
* ``last.pt`` / ``best.pt`` -- checkpoints (last epoch / best validation STD accuracy).

:func:`load_run` gives it all back as a :class:`Run`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from csg_interp.errors import (
    InvalidParameterError,
    MissingInputError,
    OutputExistsError,
    check_output_parent,
)

from .checkpoint import CheckpointError, load_checkpoint, safe_torch_load, save_checkpoint
from .config import TrainConfig
from .network import CSGNet

__all__ = [
    "CHECKPOINT_NAMES",
    "EXPORT_FORMAT",
    "Run",
    "build_net",
    "net_meta",
    "feature_stages",
    "scope_parameters",
    "load_run",
    "read_history",
    "export_network",
    "load_network",
]

CHECKPOINT_NAMES: tuple[str, ...] = ("last", "best")
EXPORT_FORMAT = "csg_interp.network"


# ----------------------------------------------------------------- networks
def net_meta(bundle: Any) -> dict[str, Any]:
    """What a network needs to know about its data (stored in checkpoints and the manifest)."""
    return {
        "dataset": bundle.name,
        "classes": list(bundle.classes),
        "num_classes": int(bundle.num_classes),
        "in_channels": int(bundle.in_channels),
        "image_size": [int(s) for s in bundle.image_size],
        "mean": [float(m) for m in bundle.mean],
        "std": [float(s) for s in bundle.std],
    }


def build_net(config: TrainConfig, meta: dict[str, Any], pretrained: bool = True) -> CSGNet:
    """The :class:`CSGNet` (or its STD twin when ``config.gate`` is false) a config describes.

    Args:
        config: a training config.
        meta: :func:`net_meta` of the data (classes, channels, mean/std).
        pretrained: load ``config.weights`` into the backbone when set (fine-tuning); loaders of
            trained runs pass ``False`` because the checkpoint overwrites every tensor.
    """
    from csg_interp.models import build_backbone

    backbone = build_backbone(
        config.model, meta["num_classes"], meta["in_channels"], config.widths,
        options=getattr(config, "model_options", None),
    )  # fmt: skip
    if pretrained and config.weights:
        # new head for the data set's classes, first conv adapted to its channels (pretrained.py)
        from .pretrained import load_pretrained

        load_pretrained(backbone, config.weights, model_name=config.model)
    net = CSGNet.from_backbone(
        backbone,
        num_classes=meta["num_classes"],
        gate=config.gate,
        gate_init=config.gate_init,
        projection=config.projection,
        normalize=(meta["mean"], meta["std"]),
        in_channels=meta["in_channels"],
    )
    if config.gate_only:  # nothing but the gate trains: every BatchNorm keeps its statistics
        from .pretrained import freeze_batchnorm

        freeze_batchnorm(net)
    elif config.freeze_bn:
        _freeze_untrained_batchnorm(net, config)
    return net


def _freeze_untrained_batchnorm(net: CSGNet, config: TrainConfig) -> None:
    """``--freeze-bn``: FrozenBatchNorm2d in the stages that neither path trains."""
    from .pretrained import freeze_batchnorm

    scopes = [config.std_stages] + ([config.csg_stages] if config.gate else [])
    if "all" in scopes:
        raise ValueError(
            "--freeze-bn freezes the BatchNorm of the stages no path trains, but a path trains "
            "'all' stages; set --std-stages/--csg-stages to a number (e.g. --preset reference)"
        )
    stages = feature_stages(net)
    freeze_batchnorm(net, within=stages[: max(0, len(stages) - max(scopes))])


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def feature_stages(net: CSGNet) -> list[nn.Module]:
    """The stages of ``net.features``, input to output, for freezing by stage.

    Unwraps the ``Normalize`` wrapper and single-child containers, then groups the children: a
    child holding a convolution starts a new stage, the children after it (BatchNorm, ReLU,
    pooling) join it. For the small ResNets this gives stem, layer1, layer2, layer3; for
    torchvision ResNets stem, layer1..layer4; for SmallCNN its three conv-BN-ReLU(-pool) blocks.
    A module met on the way that defines ``feature_stages()`` (a timm ViT's token grid: the
    embedding, then one stage per block) gives its own stages.

    Raises:
        ValueError: if the features cannot be split into stages (use ``"all"``).
    """
    module: nn.Module = net.features
    while True:
        if callable(getattr(module, "feature_stages", None)):
            return [nn.ModuleList(s) for s in module.feature_stages()]
        children = [c for c in module.children() if _has_params(c)]
        if len(children) == 1:
            module = children[0]
            continue
        break
    stages: list[list[nn.Module]] = []
    for child in module.children():
        if _has_conv(child) or not stages:
            stages.append([child])
        else:
            stages[-1].append(child)
    stages = [s for s in stages if any(_has_params(m) for m in s)]
    if len(stages) < 2:
        raise ValueError(
            f"cannot split the features of this {type(module).__name__} into stages; train every "
            "parameter with std_stages='all' / csg_stages='all'"
        )
    return [nn.ModuleList(s) for s in stages]


def scope_parameters(net: CSGNet, stages: int | str) -> list[nn.Parameter]:
    """Backbone and head parameters trained by a path: ``"all"``, or the last ``stages`` stages
    of the features plus the head. The gate is never included.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1))
        >>> len(scope_parameters(net, 1)) < len(scope_parameters(net, "all"))
        True
    """
    gate_ids = {id(p) for p in net.gate.parameters()} if net.gate is not None else set()
    if stages == "all":
        params = list(net.features.parameters()) + list(net.head.parameters())
    else:
        all_stages = feature_stages(net)
        if stages > len(all_stages):
            raise ValueError(
                f"asked for the last {stages} stages but the features have {len(all_stages)}"
            )
        params = [p for s in all_stages[-stages:] for p in s.parameters()]
        params += list(net.head.parameters())
    seen: set[int] = set()
    unique = []
    for p in params:
        if id(p) not in seen and id(p) not in gate_ids:
            seen.add(id(p))
            unique.append(p)
    return unique


# --------------------------------------------------------------------- runs
def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (none if absent; a torn last line is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash: the rows before it are valid
    return rows


@dataclass
class Run:
    """A trained run loaded back from its directory.

    Attributes:
        run_dir: the directory.
        config: its resolved :class:`TrainConfig`.
        manifest: ``manifest.json`` (versions, git revision, data set, classes, result).
        history: ``metrics.jsonl`` rows, one per epoch.
        net: the :class:`CSGNet` in eval mode on ``device`` (``net.gate is None`` for STD).
        checkpoint: which checkpoint was loaded (``last`` or ``best``).
        epochs_done: epochs completed when that checkpoint was written.
        meta: classes, channels, image size, mean/std of the training data.
    """

    run_dir: Path
    config: TrainConfig
    manifest: dict[str, Any]
    history: list[dict[str, Any]]
    net: CSGNet
    checkpoint: str = "last"
    epochs_done: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes", []))

    @property
    def has_gate(self) -> bool:
        return self.net.gate is not None

    def load_data(self, **overrides: Any):
        """The :class:`~csg_interp.data.DataBundle` this run trained on (same split seed).

        Args:
            **overrides: loader options to change (e.g. ``data_root=...`` on another machine).
        """
        from .data import load_bundle

        return load_bundle(self.config, **overrides)

    def __repr__(self) -> str:
        kind = "CSG" if self.has_gate else "STD"
        return (
            f"Run({str(self.run_dir)!r}, {kind} {self.config.model} on {self.config.dataset}, "
            f"checkpoint={self.checkpoint!r}, epochs_done={self.epochs_done})"
        )


def _check_checkpoint_name(checkpoint: str) -> None:
    if checkpoint not in CHECKPOINT_NAMES:
        raise ValueError(f"checkpoint must be 'last' or 'best', got {checkpoint!r}")


def check_same_data(
    run_dir: str | os.PathLike, other: str | os.PathLike, role: str = "baseline"
) -> None:
    """Fail fast when two runs were trained on different data (a comparison would be void).

    Reads only the two ``config.json`` files, before anything is measured.

    Args:
        run_dir: the run.
        other: the run compared with it.
        role: the parameter that named ``other`` (for the message).

    Raises:
        MissingInputError: a run directory or its config is missing.
        InvalidParameterError: the data sets or split seeds differ.
    """
    for path in (Path(run_dir), Path(other)):
        if not (path / "config.json").is_file():
            load_run(path)  # raises the usual message (missing directory, file given, ...)
    mine = TrainConfig.load(Path(run_dir) / "config.json")
    theirs = TrainConfig.load(Path(other) / "config.json")
    for field_name in ("dataset", "data_seed"):
        a, b = getattr(mine, field_name), getattr(theirs, field_name)
        if a != b:
            raise InvalidParameterError(
                f"`{role}` {other} was trained with {field_name} {b!r} but {run_dir} with {a!r}; "
                "compare runs of the same data set and split seed (their test images differ)"
            )


def _missing_checkpoint_message(run_dir: Path, checkpoint: str) -> str:
    """Why ``<checkpoint>.pt`` is missing, judged from the run's other files."""
    path = run_dir / f"{checkpoint}.pt"
    other = "best" if checkpoint == "last" else "last"
    metrics = run_dir / "metrics.jsonl"
    history = read_history(metrics) if metrics.is_file() else []
    if (run_dir / f"{other}.pt").is_file():
        return (
            f"{path} is missing although the run has {len(history)} completed epoch(s): it was "
            f"deleted or moved. Restore it, or use `checkpoint={other}`"
        )
    if history:
        return (
            f"{path} is missing, and so is {other}.pt, although the run has {len(history)} "
            "completed epoch(s): the checkpoints were deleted or moved. Restore them or retrain"
        )
    return (
        f"{path} not found: the run has not finished an epoch yet; continue it with "
        f"csg-interp train --out {run_dir} --resume"
    )


def _load_weights(net: nn.Module, weights: dict[str, Any], path: Path, config: TrainConfig) -> None:
    """``net.load_state_dict(weights)`` with a short message when they belong to another network."""
    own = net.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in weights and tuple(getattr(weights[k], "shape", v.shape)) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"{len(x)} {what}" for x, what in ((missing, "missing"), (unexpected, "unexpected"),
                                                    (shapes, "of another shape")) if x]  # fmt: skip
        first = (shapes or [f"e.g. {(missing or unexpected)[0]}"])[0]
        raise CheckpointError(
            f"{path} holds the weights of another network than the run's config.json describes "
            f"(model {config.model!r}, gate {config.gate}): {', '.join(parts)} of "
            f"{len(own)} tensors ({first}); the file was replaced or copied from another run. "
            "Restore the run's own checkpoint or retrain"
        )
    net.load_state_dict(weights)


def load_run(
    run_dir: str | os.PathLike, checkpoint: str = "last", device: str | torch.device = "cpu"
) -> Run:
    """Load a run directory: network (eval mode), config, manifest and per-epoch history.

    Args:
        run_dir: a directory written by ``csg-interp train`` / :func:`fit`.
        checkpoint: ``last`` (the paper's choice) or ``best`` (best validation STD accuracy).
        device: where the network goes.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: if the directory or the checkpoint is missing.
        CheckpointError: if the checkpoint is corrupt, foreign or refused.

    Example:
        >>> run = load_run("runs/csg", checkpoint="best")  # doctest: +SKIP
        >>> run.net(images).argmax(1)  # doctest: +SKIP
    """
    _check_checkpoint_name(checkpoint)
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise MissingInputError(
            f"{run_dir} is a file, not a run directory; pass the folder written by "
            "csg-interp train (it holds config.json and last.pt)"
        )
    if not run_dir.is_dir():
        raise MissingInputError(
            f"run directory {run_dir} not found; train one with: csg-interp train --out {run_dir}"
        )
    config = TrainConfig.load(run_dir / "config.json")
    path = run_dir / f"{checkpoint}.pt"
    if not path.is_file():
        raise MissingInputError(_missing_checkpoint_message(run_dir, checkpoint))
    state = load_checkpoint(path)
    meta = state["meta"]
    net = build_net(config, meta, pretrained=False)
    _load_weights(net, state["model"], path, config)
    net.to(device).eval()
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return Run(
        run_dir=run_dir,
        config=config,
        manifest=manifest,
        history=read_history(run_dir / "metrics.jsonl"),
        net=net,
        checkpoint=checkpoint,
        epochs_done=int(state["epochs_done"]),
        meta=meta,
    )


# ------------------------------------------------------------------- export
def export_network(run: Run, path: str | os.PathLike, parents: bool = False) -> Path:
    """Write the plain network of ``run`` (``features`` + ``head``, no gate) to ``path``.

    The file holds tensors and primitives only (load it with :func:`load_network`, or with
    ``torch.load(path, weights_only=True)`` and your own model).

    Args:
        run: a :class:`Run` (from :func:`load_run`).
        path: the file to write; its folder must exist unless ``parents``.
        parents: create the missing folders above ``path``.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` is a directory.
        InvalidParameterError: the folder of ``path`` does not exist (and ``parents`` is false).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(
            f"`path` {path} is a directory; name the file to write, e.g. {path / 'model.pt'}"
        )
    check_output_parent(path, "path", parents=parents)
    plain = run.net.plain_network()
    state = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "model": run.config.model,
        "widths": run.config.widths,
        "source_run": str(run.run_dir),
        "checkpoint": run.checkpoint,
        "meta": dict(run.meta),
        "state_dict": {k: v.detach().cpu() for k, v in plain.state_dict().items()},
    }
    return save_checkpoint(state, path)


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Sequential:
    """Load a network written by :func:`export_network` (or ``csg-interp export``), eval mode.

    Returns:
        ``nn.Sequential(features, head)``: images in [0, 1] → logits.

    Raises:
        FileNotFoundError, CheckpointError: missing, corrupt or not an exported network.
    """
    from .checkpoint import CheckpointError

    state = safe_torch_load(path)
    if not isinstance(state, dict) or state.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not a network exported by csg-interp export")
    config = TrainConfig(
        model=state["model"], widths=state["widths"], gate=False, dataset=state["meta"]["dataset"]
    )
    plain = build_net(config, state["meta"], pretrained=False).plain_network()
    plain.load_state_dict(state["state_dict"])
    return plain.to(device).eval()
