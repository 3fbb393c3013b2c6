"""Box overlays of localization maps, drawn with torchvision (one PNG grid per method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .colors import BOX_COLORS

__all__ = ["save_box_overlays"]


def save_box_overlays(
    images: Any, maps: Any, gt_boxes: Any, threshold: float, path: Path, scale: int = 3
) -> Path:
    """A grid of maps blended over the images with the true and predicted boxes, as one PNG.

    Each map is min-max scaled per image, coloured with ``jet`` and blended over the grey image
    (0.55 image, 0.45 map); the true box is drawn in ``BOX_COLORS["true"]`` (lime) and the box
    :func:`~csg_interp.attribution.boxes_from_maps` finds at ``threshold`` (``minmax`` mode) in
    ``BOX_COLORS["predicted"]`` (red); an image without a predicted box shows only the true one.

    Args:
        images: float (N, C, H, W) in [0, 1].
        maps: float (N, H, W) at the images' resolution.
        gt_boxes: float (N, 4) true boxes, xyxy pixel-edge.
        threshold: the min-max threshold of the predicted box.
        path: the PNG to write.
        scale: nearest-neighbour upscaling factor of each tile.

    Returns:
        ``path``.
    """
    import torch
    import torch.nn.functional as F
    from matplotlib import colormaps
    from torchvision.utils import draw_bounding_boxes, save_image

    from csg_interp._utils import min_max
    from csg_interp.attribution.boxes import boxes_from_maps

    predicted = boxes_from_maps(maps, threshold, mode="minmax")
    normalised = min_max(maps, start_dim=1)
    heat = torch.from_numpy(colormaps["jet"](normalised.numpy())[..., :3])
    heat = heat.permute(0, 3, 1, 2).float()
    grey = images.float().mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    blended = F.interpolate(0.55 * grey + 0.45 * heat, scale_factor=scale, mode="nearest")
    tiles = []
    for index in range(images.shape[0]):
        tile = (blended[index] * 255).round().to(torch.uint8)
        boxes = [gt_boxes[index] * scale]
        colors = [BOX_COLORS["true"]]
        if predicted.valid[index]:
            boxes.append(predicted.boxes[index] * scale)
            colors.append(BOX_COLORS["predicted"])
        tiles.append(draw_bounding_boxes(tile, torch.stack(boxes), colors=colors, width=2))
    save_image(torch.stack(tiles).float() / 255.0, path, nrow=min(8, len(tiles)), padding=2)
    return path
