"""The optimisers of a run: backbone optimisers (``sgd``, ``adam``, ``adamw``), their weight-decay
groups, the gate's Adam, and the per-step learning rates and momenta.

Weight decay applies to the weights of convolutions and linear layers only: BatchNorm scales and
shifts, biases (every parameter with fewer than two dimensions) and the gate get none, the usual
practice for residual networks (Goyal et al., "Accurate, Large Minibatch SGD", 2017, §5.1) and
timm's ``param_groups_weight_decay``. The gate is always stepped by Adam with its own learning rate
(docs/training.md says why); :func:`build_optimizers` gives it to the path whose steps train it.

The trainer calls :func:`build_optimizers` once, :func:`set_learning_rates` before every step and
:func:`optimizers_of` to know which optimisers a step of an epoch steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .runs import scope_parameters

__all__ = [
    "build_optimizers",
    "make_optimizer",
    "optimizers_of",
    "set_learning_rates",
    "weight_decay_groups",
]


def weight_decay_groups(
    params: Sequence[nn.Parameter], lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Split parameters into a decayed group (≥ 2-D weights) and an undecayed one.

    Args:
        params: the parameters one path trains.
        lr: their base learning rate.
        weight_decay: the decay of the ≥ 2-D weights; with 0 there is one group, as before weight
            decay existed (so old checkpoints' optimiser states load).

    Returns:
        Parameter groups named ``backbone`` (decayed) and ``backbone_no_decay``.

    Example:
        >>> layer = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        >>> groups = weight_decay_groups(list(layer.parameters()), 0.1, 5e-4)
        >>> [(g["name"], len(g["params"]), g["weight_decay"]) for g in groups]
        [('backbone', 1, 0.0005), ('backbone_no_decay', 3, 0.0)]
    """
    params = list(params)
    if weight_decay == 0:
        return [{"name": "backbone", "params": params, "lr": lr, "weight_decay": 0.0}]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    return [
        {"name": "backbone", "params": decay, "lr": lr, "weight_decay": float(weight_decay)},
        {"name": "backbone_no_decay", "params": rest, "lr": lr, "weight_decay": 0.0},
    ]


def make_optimizer(config: Any, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` names, over ``groups`` (each with its own decay).

    Args:
        config: a resolved :class:`~csg_interp.training.TrainConfig` (``optimizer``,
            ``momentum``, ``nesterov``).
        groups: parameter groups from :func:`weight_decay_groups`.

    Returns:
        ``torch.optim.SGD`` (momentum, Nesterov), ``Adam`` or ``AdamW`` (β = (momentum, 0.999),
        ε = 1e-8).

    Raises:
        ValueError: for an unknown optimiser name.
    """
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=config.momentum, nesterov=bool(config.nesterov))
    betas = (config.momentum, 0.999)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, betas=betas, eps=1e-8)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=betas, eps=1e-8)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use sgd, adam or adamw")


def build_optimizers(
    config: Any, net: nn.Module, optimizer_names: Sequence[str]
) -> dict[str, torch.optim.Optimizer]:
    """The optimisers of a run, one per training path, and freeze what no path trains.

    Each path's optimiser holds exactly the parameters it trains, in
    :func:`weight_decay_groups`; the gate (a group named ``gate``, no weight decay) goes to the
    path whose steps train it (the last of ``optimizer_names``). The gate is always stepped by
    Adam: with an Adam backbone it is a group of that path's optimiser, otherwise an Adam of its
    own (key ``"gate"``) that steps exactly when that path steps. Every parameter that no
    optimiser holds gets ``requires_grad=False`` here, once.

    Args:
        config: a resolved :class:`~csg_interp.training.TrainConfig` (``gate_only``, ``gate``,
            ``std_stages`` / ``csg_stages``, the learning rates, ``weight_decay`` and the
            optimiser options).
        net: the :class:`~csg_interp.training.CSGNet` to train.
        optimizer_names: ``EpochSchedule.optimizer_names``: ``["std", "csg"]`` for the
            alternating scheme, one name for the joint one.

    Returns:
        ``{path name: optimiser}`` (plus ``"gate"`` for a non-Adam backbone), in that order.
    """
    c, names = config, list(optimizer_names)
    paths: dict[str, tuple[list[nn.Parameter], float]] = {}
    if not c.gate_only:  # gate_only: a frozen, trained network; only the gate learns
        paths[names[0]] = (scope_parameters(net, c.std_stages), c.lr)
        if names == ["std", "csg"]:
            paths["csg"] = (scope_parameters(net, c.csg_stages), c.csg_lr)
    groups = {name: weight_decay_groups(params, lr, c.weight_decay)
              for name, (params, lr) in paths.items()}  # fmt: skip
    gate_owner = names[-1] if c.gate else None  # the path whose steps train the gate
    gate_group = (
        {"name": "gate", "params": [net.gate.weight], "lr": c.gate_lr, "weight_decay": 0.0}
        if gate_owner else None
    )  # fmt: skip
    trained = {id(p) for gs in groups.values() for g in gs for p in g["params"]}
    if gate_group is not None:
        trained.add(id(net.gate.weight))
    for param in net.parameters():  # frozen once, never toggled
        if id(param) not in trained:
            param.requires_grad_(False)
    optimizers = {name: make_optimizer(c, gs) for name, gs in groups.items()}
    if gate_group is not None:
        if c.optimizer == "adam" and gate_owner in optimizers:
            optimizers[gate_owner].add_param_group(gate_group)
        elif c.optimizer == "adam":  # gate_only: the owner trains nothing else
            optimizers[gate_owner] = torch.optim.Adam([gate_group], betas=(0.9, 0.999), eps=1e-8)
        else:
            optimizers["gate"] = torch.optim.Adam([gate_group], betas=(0.9, 0.999), eps=1e-8)
    return optimizers


def set_learning_rates(
    optimizers: dict[str, torch.optim.Optimizer],
    schedule: Any,
    config: Any,
    epoch: int,
    step: int = 0,
) -> dict[str, float | None]:
    """Set every group's learning rate (and, per step, its momentum) for one step of an epoch.

    Backbone groups get the ``csg`` rate in the ``csg`` optimiser and the ``std`` rate
    elsewhere; ``gate`` groups get the gate's rate. Unless ``config.lr_schedule`` is
    ``multistep``, the non-gate optimisers' momentum (SGD) or first beta (Adam/AdamW) follows
    ``schedule.momentum``.

    Args:
        optimizers: from :func:`build_optimizers`.
        schedule: the run's :class:`~csg_interp.training.EpochSchedule`.
        config: the resolved config (``lr_schedule``).
        epoch: the epoch.
        step: the step within the epoch.

    Returns:
        The rates set: ``{"std": ..., "csg": ..., "gate": ...}`` (``None`` where unused).
    """
    rates = schedule.learning_rates(epoch, step)
    per_step = config.lr_schedule != "multistep"
    for name, optimizer in optimizers.items():
        momentum = schedule.momentum(name, epoch, step) if per_step and (
            name != "gate"
        ) else None
        for group in optimizer.param_groups:
            if group["name"] == "gate":
                group["lr"] = rates["gate"]
                continue
            group["lr"] = rates["csg"] if name == "csg" else rates["std"]
            if momentum is not None:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                else:
                    group["momentum"] = momentum
    return rates


def optimizers_of(
    optimizers: dict[str, torch.optim.Optimizer], schedule: Any, kind: str
) -> list[torch.optim.Optimizer]:
    """The optimisers that one step of an epoch of ``kind`` steps, in stepping order.

    Args:
        optimizers: from :func:`build_optimizers`.
        schedule: the run's :class:`~csg_interp.training.EpochSchedule`.
        kind: ``"std"``, ``"csg"`` or ``"joint"``.

    Returns:
        The path's optimiser, then (except in STD epochs) the gate's own Adam when there is one.
    """
    names = [schedule.optimizer_for(kind)] + (["gate"] if kind != "std" else [])
    return [optimizers[name] for name in names if name in optimizers]
