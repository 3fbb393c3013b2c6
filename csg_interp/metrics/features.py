"""Pooled activations of the gated layer: the features every entanglement metric reads.

Protocol of the paper's code (``docs/method.md`` §5): the network in eval mode, the gate bypassed
(``net.forward_features``), the gated map globally average-pooled to one value per filter, on a
split without augmentation (by default the test split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from csg_interp._utils import eval_mode, resolve_device
from csg_interp.errors import check_pixel_values
from csg_interp.progress import progress_bar
from csg_interp.training.network import check_images

__all__ = ["Outputs", "extract_features", "extract_outputs", "resolve_device"]


@dataclass
class Outputs:
    """What one pass over a data set yields.

    Attributes:
        features: N×K float32, the global-average-pooled gated map (gate bypassed).
        logits: N×C float32, the STD-path logits.
        labels: N int64 labels, or ``None`` when the input had none.
    """

    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray | None

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def _as_dataset(data: object) -> tuple[Dataset, bool]:
    """Turn images, ``(images, labels)`` or a Dataset into a Dataset; returns (dataset, has_labels)."""
    if isinstance(data, Tensor):
        check_images(data)
        check_pixel_values(data, "data")
        return TensorDataset(data), False
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        images, labels = data
        check_images(images)
        check_pixel_values(images, "data")
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"got labels of shape {tuple(labels.shape)} for {images.shape[0]} images; "
                "pass one label per image"
            )
        return TensorDataset(images, labels), True
    if isinstance(data, Dataset):
        if hasattr(data, "__len__") and len(data) == 0:  # type: ignore[arg-type]
            raise ValueError("the data set is empty")
        return data, True
    raise ValueError(
        f"cannot read images from a {type(data).__name__}; pass a float tensor (N, C, H, W) in "
        "[0, 1], a tuple (images, labels) or a Dataset yielding (image, label)"
    )


@torch.no_grad()
def extract_outputs(
    net: nn.Module,
    data: Tensor | tuple[Tensor, Tensor] | Dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> Outputs:
    """Pooled gated-layer features and STD logits in one batched pass (eval mode, no gate).

    Args:
        net: a :class:`~csg_interp.training.CSGNet` (anything with ``forward_features(x)`` and a
            ``head`` mapping that map to logits).
        data: images (N, C, H, W) in [0, 1]; ``(images, labels)``; or a Dataset of
            ``(image, label)`` such as a split of :func:`~csg_interp.data.load_dataset`.
        batch_size: images per forward pass.
        device: where to run; ``None`` = where the network's parameters are, ``"auto"`` = CUDA
            when available. The network is moved there and stays there.
        progress: show a tqdm bar over batches (``None``: the switch of
            :func:`csg_interp.progress.set_progress`; shown after a second).

    Returns:
        :class:`Outputs` with numpy arrays.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> from csg_interp.training import CSGNet
        >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1))
        >>> out = extract_outputs(net, torch.rand(3, 1, 28, 28), progress=False)
        >>> out.features.shape, out.logits.shape, out.labels
        ((3, 64), (3, 10), None)
    """
    if not hasattr(net, "forward_features") or not hasattr(net, "head"):
        raise ValueError(
            f"{type(net).__name__} has no forward_features/head; wrap it with "
            "csg_interp.training.CSGNet.from_backbone(model)"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dataset, has_labels = _as_dataset(data)
    target = resolve_device(device, net)
    net.to(target)
    features, logits, labels = [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with eval_mode(net):
        for batch in progress_bar(loader, desc="features", unit="batch", enabled=progress):
            images = batch[0].to(target)
            if images.dtype == torch.uint8:
                images = images.float().div_(255.0)
            activations = net.forward_features(images)
            if activations.dim() == 4:
                pooled = activations.mean(dim=(2, 3))
            elif activations.dim() == 2:
                pooled = activations
            else:
                raise ValueError(
                    f"the gated map has shape {tuple(activations.shape)}; expected (N, K, h, w)"
                )
            features.append(pooled.float().cpu())
            logits.append(net.head(activations).float().cpu())
            if has_labels:
                labels.append(torch.as_tensor(batch[1]).long().cpu())
    return Outputs(
        features=torch.cat(features).numpy(),
        logits=torch.cat(logits).numpy(),
        labels=torch.cat(labels).numpy() if has_labels else None,
    )


def extract_features(
    net: nn.Module,
    images_or_dataset: Tensor | tuple[Tensor, Tensor] | Dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The N×K global-average-pooled gated map (eval mode, gate bypassed) and the labels.

    Same arguments as :func:`extract_outputs`.

    Returns:
        ``(features, labels)``: float32 (N, K) and int64 (N,) numpy arrays (``labels`` is
        ``None`` when only images were given).

    Example:
        >>> from csg_interp.models import build_backbone
        >>> from csg_interp.training import CSGNet
        >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1))
        >>> x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
        >>> features, labels = extract_features(net, (x, y), progress=False)
        >>> features.shape, labels.tolist()
        ((5, 64), [0, 1, 2, 3, 4])
    """
    out = extract_outputs(net, images_or_dataset, batch_size, device, progress)
    return out.features, out.labels
