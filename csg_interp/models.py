"""Small CNNs for 28×28 / 32×32 / 8×8 images and torchvision factories.

The small ResNets follow the CIFAR ResNet of He et al. (2016, §4.2): a 3×3 stem, three stages of
``n`` BasicBlocks (depth = 6n + 2: 8, 14, 20, ...), widths 16/32/64 by default, strides 1/2/2, a
1×1-conv projection shortcut where the shape changes. The last stage ends with the block's final
ReLU, which is where the class-specific gate sits.

``build_backbone(name, ...)`` returns a plain ``nn.Module`` classifier; ``csg_interp.training``
wraps it into a :class:`~csg_interp.training.CSGNet`. ``build_backbone("timm:<name>", ...)``
builds any model of timm (Wightman, *PyTorch Image Models*,
https://github.com/huggingface/pytorch-image-models; the optional extra
``pip install 'csg_interp[timm]'``), never with pretrained weights; docs/models.md says where
the gate sits in each timm family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "SmallResNet",
    "SmallCNN",
    "build_backbone",
    "build_timm_model",
    "available_models",
    "TIMM_PREFIX",
]

#: ``--model timm:<name>`` builds ``timm.create_model(<name>, pretrained=False, ...)``.
TIMM_PREFIX = "timm:"


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 projection) shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet with torchvision-like names (``layer1..3``, ``avgpool``, ``fc``).

    Args:
        depth: 6n + 2 (8, 14, 20, 32, ...).
        num_classes: output classes.
        in_channels: input channels (1 for grey images, 3 for RGB).
        widths: channels of the three stages; the last one is K, the number of gated filters.

    Example:
        >>> net = SmallResNet(depth=8, num_classes=10, in_channels=1)
        >>> net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        depth: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        if len(widths) != 3:
            raise ValueError(f"widths needs three stage widths, got {tuple(widths)}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=False)
        in_planes = widths[0]
        stages = []
        for index, (width, stride) in enumerate(zip(widths, (1, 2, 2))):
            layers = []
            for block in range(blocks):
                layers.append(BasicBlock(in_planes, width, stride if block == 0 else 1))
                in_planes = width
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's map after its final ReLU, (N, K, h, w)."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))


class SmallCNN(nn.Module):
    """A plain 3-conv CNN (conv-BN-ReLU, max-pool between), GAP and one linear layer.

    Args:
        num_classes: output classes.
        in_channels: input channels.
        widths: channels of the three conv layers; the last is K.

    Example:
        >>> SmallCNN(num_classes=3, in_channels=1)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 3])
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32, 32)
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths needs three conv widths, got {tuple(widths)}")
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if index < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def _small_resnet(depth: int) -> Callable[..., nn.Module]:
    def factory(num_classes: int, in_channels: int, widths: Sequence[int] | None = None) -> nn.Module:
        return SmallResNet(depth, num_classes, in_channels, widths or (16, 32, 64))

    return factory


def _small_cnn(num_classes: int, in_channels: int, widths: Sequence[int] | None = None) -> nn.Module:
    return SmallCNN(num_classes, in_channels, widths or (16, 32, 32))


def _torchvision(name: str) -> Callable[..., nn.Module]:
    def factory(num_classes: int, in_channels: int, widths: Sequence[int] | None = None) -> nn.Module:
        import torchvision

        if widths is not None:
            raise ValueError(f"{name} has fixed widths; 'widths' applies to the small models only")
        # weights=None: no download, ever. Load local weights with csg_interp.training.load_pretrained.
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            _replace_first_conv(model, in_channels)
        return model

    return factory


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one with ``in_channels`` inputs (same kernel, stride, padding)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                new = nn.Conv2d(
                    in_channels,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    child.groups,
                    child.bias is not None,
                )
                setattr(parent, child_name, new)
                return
    raise ValueError("model has no Conv2d layer to adapt to the input channels")


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "resnet8": _small_resnet(8),
    "resnet14": _small_resnet(14),
    "resnet20": _small_resnet(20),
    "smallcnn": _small_cnn,
    "resnet18": _torchvision("resnet18"),
    "resnet34": _torchvision("resnet34"),
    "resnet50": _torchvision("resnet50"),
    "vgg11_bn": _torchvision("vgg11_bn"),
    "mobilenet_v2": _torchvision("mobilenet_v2"),
    "densenet121": _torchvision("densenet121"),
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_backbone` and ``--model`` (plus ``timm:<name>``)."""
    return sorted(_REGISTRY)


def build_timm_model(
    name: str, num_classes: int, in_channels: int = 3, options: dict[str, Any] | None = None
) -> nn.Module:
    """Build a timm model by name with random weights (``pretrained=False``, no download).

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``"resnet18"``,
            ``"convnext_atto"``, ``"vit_tiny_patch16_224"``.
        num_classes: output classes.
        in_channels: input channels (timm's ``in_chans``).
        options: more keyword arguments of ``timm.create_model`` / the model's constructor,
            JSON primitives (e.g. ``{"img_size": 28, "patch_size": 4, "class_token": False,
            "global_pool": "avg", "fc_norm": False}`` for a ViT on 28 px images).

    Returns:
        The timm model (an ``nn.Module`` mapping images to logits).

    Raises:
        ValueError: timm is not installed, the name is unknown (close names are listed), an
            option is not accepted by the model, or ``pretrained`` is asked for.

    Example:
        >>> model = build_timm_model("test_resnet", num_classes=3, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 3])
    """
    try:
        import timm
    except ImportError:
        raise ValueError(
            f"--model {TIMM_PREFIX}{name} needs timm: pip install 'csg_interp[timm]'"
        ) from None
    options = dict(options or {})
    for key in ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path"):
        if key in options:
            raise ValueError(
                f"model option {key!r} is not accepted: models are never downloaded; load local "
                "weights with --weights PATH (TrainConfig.weights)"
            )
    for key in ("num_classes", "in_chans"):
        if key in options:
            raise ValueError(
                f"model option {key!r} is set from the data set; drop it from --model-option"
            )
    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:8]
        hint = f"; close names: {', '.join(close)}" if close else "; see timm.list_models()"
        raise ValueError(f"unknown timm model {name!r}{hint}")
    try:
        return timm.create_model(
            name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **options
        )
    except TypeError as error:
        raise ValueError(
            f"timm model {name!r} does not accept the model options {sorted(options)}: {error}"
        ) from error


def build_backbone(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    widths: Sequence[int] | None = None,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """Build a randomly initialised classifier by name (never downloads weights).

    Args:
        name: one of :func:`available_models`, or ``"timm:<name>"`` for any timm model
            (:func:`build_timm_model`).
        num_classes: output classes.
        in_channels: input channels (the first conv is adapted for torchvision models).
        widths: stage widths of the small models (``resnet8/14/20``: 3 values, ``smallcnn``: 3).
        options: keyword arguments of a timm model (``--model-option KEY=VALUE``); timm only.

    Returns:
        An ``nn.Module`` mapping (N, in_channels, H, W) to (N, num_classes) logits.

    Raises:
        ValueError: for an unknown name, with the list of known names.

    Example:
        >>> build_backbone("resnet8", num_classes=10, in_channels=1)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """
    if name.startswith(TIMM_PREFIX):
        if widths is not None:
            raise ValueError(
                "'widths' applies to the small models only; set a timm model's widths with its "
                "own options, e.g. --model-option embed_dim=64 (TrainConfig.model_options)"
            )
        return build_timm_model(name[len(TIMM_PREFIX) :], num_classes, in_channels, options)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; available: {', '.join(available_models())}, or "
            f"{TIMM_PREFIX}<name> for a timm model"
        ) from None
    if options:
        raise ValueError(
            f"model options {sorted(options)} apply to timm models (--model timm:<name>) only; "
            f"drop --model-option for {name!r}"
        )
    return factory(num_classes, in_channels, widths)
