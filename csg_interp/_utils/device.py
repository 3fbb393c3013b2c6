"""Where computation runs: one device resolver and an eval-mode context that undoes itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["eval_mode", "resolve_device"]


def resolve_device(
    device: str | torch.device | None = "auto", net: nn.Module | None = None
) -> torch.device:
    """Turn a device name into a :class:`torch.device`.

    Args:
        device: ``"auto"`` (the default: CUDA when available, else CPU), any name
            :class:`torch.device` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``), a
            :class:`torch.device` (returned as is), or ``None``: the device of ``net``'s first
            parameter (CPU when there is no ``net`` or it has no parameters).
        net: the network whose device ``None`` stands for.

    Returns:
        The device.

    Raises:
        ValueError: if CUDA is asked for but not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device(None, torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device is None:
        if net is not None:
            for parameter in net.parameters():
                return parameter.device
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} requested but CUDA is not available; use --device cpu or auto "
            "(device='cpu' or 'auto' in Python)"
        )
    return resolved


@contextlib.contextmanager
def eval_mode(net: nn.Module, device: str | torch.device | None = None) -> Iterator[torch.device]:
    """Put ``net`` in eval mode (and optionally on ``device``) for a block, then restore both.

    The caller's training flag is restored on exit, and so is the device of the network's first
    parameter when ``device`` moved it (a network with parameters on several devices is moved
    back as a whole to that first device).

    Args:
        net: the network.
        device: where to run inside the block (resolved with :func:`resolve_device`; ``None``
            keeps the network where it is).

    Yields:
        The device the network is on inside the block.

    Example:
        >>> net = torch.nn.Linear(2, 2).train()
        >>> with eval_mode(net, "cpu") as where:
        ...     net.training, where.type
        (False, 'cpu')
        >>> net.training
        True
    """
    was_training = net.training
    before = resolve_device(None, net)
    target = resolve_device(device, net)
    moved = target != before
    if moved:
        net.to(target)
    net.eval()
    try:
        yield target
    finally:
        net.train(was_training)
        if moved:
            net.to(before)
