"""The backbone optimisers (``sgd``, ``adam``, ``adamw``) and their weight-decay groups.

Weight decay applies to the weights of convolutions and linear layers only: BatchNorm scales and
shifts, biases (every parameter with fewer than two dimensions) and the gate get none, the usual
practice for residual networks (Goyal et al., "Accurate, Large Minibatch SGD", 2017, §5.1) and
timm's ``param_groups_weight_decay``. The gate is never built here: it is always stepped by Adam
with its own learning rate (docs/training.md says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["weight_decay_groups", "make_optimizer"]


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
