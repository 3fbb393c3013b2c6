"""CSGNet: a CNN split into ``features`` and ``head`` with a class-specific gate between them.

``net(x)`` is the standard (STD) path -- the plain network, what Captum, metrics and inference
call. ``net(x, labels)`` also returns the CSG-path logits, computed from the *same* backbone pass
with the gate row of each sample's label multiplied onto the gated map (``docs/method.md`` §1).

Where the gate sits, per family (also in docs/models.md):

============================  ==========================================  =========================
family                        gated map (features output)                 head
============================  ==========================================  =========================
ResNet / ResNeXt / WideResNet ``layer4`` output (after the block's ReLU)   GAP → ``fc``
small ResNets (resnet8/14/20)  ``layer3`` output (after the block's ReLU)   GAP → ``fc``
SmallCNN                      last conv-BN-ReLU                           GAP → ``fc``
timm-style models             ``forward_features`` output                 ``forward_head``
timm CNNs (``timm:<name>``)    ``forward_features`` output (ResNet: after  GAP → classifier when
                              the last ReLU; ConvNeXt: the last stage's   ``forward_head`` equals
                              residual output; EfficientNet: after the    it on a probe map, else
                              head conv's BN-SiLU)                        ``forward_head``
timm VisionTransformer        the final patch tokens (after ``norm``) on  ``global_pool='avg'``
                              the patch grid, (N, D, h, w)                only: GAP → ``head``
                                                                          (``fc_norm`` off) or
                                                                          GAP → ``fc_norm`` → head
VGG (adapter)                 ``features`` output (after the last max-pool; avgpool → flatten →
                              a max-pool commutes with a gate ≥ 0)         3-layer classifier
MobileNetV2 (adapter)         ``features`` output (after ReLU6)           GAP → dropout → linear
DenseNet (adapter)            ``features`` output followed by the ReLU    GAP → ``classifier``
                              that torchvision applies in ``forward``
torchvision MobileNetV3,       not supported: the last stage ends in Hardswish/SiLU, so activations
EfficientNet                  can be negative; pass explicit ``features``/``head`` if you must
                              (timm's EfficientNet is gated, see above and docs/models.md)
============================  ==========================================  =========================
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .gate import ClassSpecificGate, check_labels

__all__ = [
    "CSGNet",
    "GAPLinearHead",
    "SharedGAPLinearHead",
    "Normalize",
    "ForwardFeatures",
    "ForwardHead",
    "TokenPoolHead",
    "VisionTransformerFeatures",
    "check_images",
]


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` as a module, so models take pixels in [0, 1].

    Keeping normalisation inside the model lets attacks use scalar pixel bounds and lets overlays
    use the raw input.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError("mean and std need one value per channel")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class GAPLinearHead(nn.Module):
    """Global average pooling → flatten → (dropout) → one linear layer.

    The head the CAM-style attributions need: ``logits = W · GAP(A) + b``.
    """

    def __init__(self, linear: nn.Linear, dropout: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout if dropout is not None else nn.Identity()
        self.linear = linear

    def pooled(self, activations: Tensor) -> Tensor:
        """GAP of a (N, K, h, w) map → (N, K); a (N, K) input is returned as is."""
        if activations.dim() == 2:
            return activations
        return torch.flatten(self.pool(activations), 1)

    def classify(self, pooled: Tensor) -> Tensor:
        return self.linear(self.dropout(pooled))

    def forward(self, activations: Tensor) -> Tensor:
        return self.classify(self.pooled(activations))


class ForwardFeatures(nn.Module):
    """Wrap a timm-style model's ``forward_features`` as a module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        activations = self.model.forward_features(x)
        if not isinstance(activations, Tensor) or activations.dim() != 4:
            shape = tuple(activations.shape) if isinstance(activations, Tensor) else type(activations)
            raise ValueError(
                f"{type(self.model).__name__}.forward_features returned {shape}, not a map "
                "(N, K, h, w); pass explicit modules: CSGNet(features, head, num_classes, "
                "num_filters, gate)"
            )
        return activations


class ForwardHead(nn.Module):
    """Wrap a timm-style model's ``forward_head`` as a module (shares the model's parameters).

    Args:
        model: the model whose ``forward_head`` maps the gated map to logits.
        not_gap_linear: why this head is not GAP → linear (shown when ``"cam"`` is asked for).
    """

    def __init__(self, model: nn.Module, not_gap_linear: str | None = None) -> None:
        super().__init__()
        # Stored outside the module tree so the parameters are owned once, by ForwardFeatures.
        object.__setattr__(self, "_model", model)
        self.not_gap_linear = not_gap_linear

    def forward(self, activations: Tensor) -> Tensor:
        return self._model.forward_head(activations)

    def reset_parameters(self) -> None:
        """Re-initialise the head's layers (owned by the features), e.g. for a sanity check."""
        head = getattr(self._model, "head", None)
        parts = [head] if isinstance(head, nn.Module) else []
        if hasattr(self._model, "get_classifier"):
            parts.append(self._model.get_classifier())
        _reset_all(parts)


def _reset_all(modules: Sequence[nn.Module]) -> None:
    for module in modules:
        for sub in module.modules():
            if hasattr(sub, "reset_parameters") and callable(sub.reset_parameters):
                sub.reset_parameters()


class SharedGAPLinearHead(GAPLinearHead):
    """GAP → dropout → a linear layer that belongs to the features' module tree.

    The head of a timm model whose ``forward_head`` is global average pooling followed by its
    classifier (timm ResNet, EfficientNet, ConvNeXt with ``head_norm_first=True``, a ViT with
    average token pooling and no ``fc_norm``). The classifier stays a submodule of the wrapped
    timm model (owned once, by the features) and is referenced here, so ``net.linear_head`` gives
    the CAM weights W and the gate can act on the pooled features.

    Args:
        linear: the model's classifier (``model.get_classifier()``).
        drop_rate: the dropout probability the model applies before it (``model.drop_rate``).
    """

    def __init__(self, linear: nn.Linear, drop_rate: float = 0.0) -> None:
        nn.Module.__init__(self)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(float(drop_rate)) if drop_rate else nn.Identity()
        object.__setattr__(self, "linear", linear)  # not registered: the features own it

    def reset_parameters(self) -> None:
        """Re-initialise the classifier (owned by the features), e.g. for a sanity check."""
        self.linear.reset_parameters()


class TokenPoolHead(nn.Module):
    """A ViT head after the token grid: mean over patches → ``fc_norm`` → dropout → classifier.

    Used when timm's ``fc_norm`` (a LayerNorm after pooling) is on, so the head is not
    GAP → linear and ``"cam"`` is not exact; the modules stay owned by the features.
    """

    def __init__(self, model: nn.Module, not_gap_linear: str) -> None:
        super().__init__()
        object.__setattr__(self, "_model", model)
        self.not_gap_linear = not_gap_linear

    def forward(self, activations: Tensor) -> Tensor:
        pooled = activations.mean(dim=(2, 3))
        return self._model.head(self._model.head_drop(self._model.fc_norm(pooled)))

    def reset_parameters(self) -> None:
        """Re-initialise ``fc_norm`` and the classifier (owned by the features)."""
        _reset_all([self._model.fc_norm, self._model.head])


class VisionTransformerFeatures(nn.Module):
    """A timm ``VisionTransformer``'s final patch-token embeddings as a map (N, D, h, w).

    ``forward_features`` (patch embedding, position embedding, blocks, final ``norm``) gives
    tokens (N, P + h·w, D); the P prefix tokens (class / register tokens) are dropped and the
    patch tokens are laid out on the patch grid, channels first, so every map-based analysis
    sees a conv-like (N, K, h, w) map with K = D channels -- the "filters" the gate multiplies.

    Args:
        model: a ``timm.models.vision_transformer.VisionTransformer``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def grid_size(self, image_size: Sequence[int]) -> tuple[int, int]:
        """The patch grid (h, w) for an input of ``image_size`` (H, W)."""
        embed = self.model.patch_embed
        if getattr(self.model, "dynamic_img_size", False):
            h, w = embed.dynamic_feat_size(tuple(image_size))
        else:
            h, w = embed.grid_size
        return int(h), int(w)

    def forward(self, x: Tensor) -> Tensor:
        expected = getattr(self.model.patch_embed, "img_size", None)
        strict = getattr(self.model.patch_embed, "strict_img_size", False)
        if strict and expected is not None and tuple(x.shape[-2:]) != tuple(expected):
            raise ValueError(
                f"this ViT was built for {expected[0]}×{expected[1]} images, got "
                f"{x.shape[-2]}×{x.shape[-1]}; resize them, or build the model with "
                f"img_size={x.shape[-2]} (or dynamic_img_size=True)"
            )
        tokens = self.model.forward_features(x)
        patches = tokens[:, self.model.num_prefix_tokens :]
        h, w = self.grid_size(x.shape[-2:])
        if patches.shape[1] != h * w:
            raise ValueError(
                f"the ViT returned {patches.shape[1]} patch tokens for a {h}×{w} patch grid; "
                "pass images of the size the model was built for (its img_size option)"
            )
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], h, w)

    def feature_stages(self) -> list[list[nn.Module]]:
        """Stages for freezing by stage: the embedding, then one per block (the last one with
        the final norm and the head), so ``csg_stages=1`` trains the last block and the head."""
        model = self.model
        names = {"patch_embed", "pos_drop", "patch_drop", "norm_pre"}
        stem = [m for n, m in model.named_children() if n in names]
        blocks = [[block] for block in model.blocks]
        tail = [m for n, m in model.named_children() if n in {"norm", "fc_norm", "head_drop", "head"}]
        blocks[-1] += tail
        return [stem] + blocks


def check_images(x: Tensor, in_channels: int | None = None) -> None:
    """Fail fast on inputs that are not a float (N, C, H, W) batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"expected a 4-D batch (N, C, H, W), got shape {tuple(x.shape)}{hint}")
    if not x.dtype.is_floating_point:
        raise ValueError(
            f"expected float images in [0, 1], got dtype {x.dtype}; convert with x.float() / 255"
        )
    if in_channels is not None and x.shape[1] != in_channels:
        raise ValueError(f"the model takes {in_channels} input channel(s), got {x.shape[1]}")


class CSGNet(nn.Module):
    """A classifier ``head(features(x))`` with a class-specific gate on the features' output.

    Args:
        features: maps images (N, C_in, H, W) to the gated map A (N, K, h, w), which should be
            non-negative (after a ReLU).
        head: maps A to logits (N, num_classes).
        num_classes: C.
        num_filters: K, the channels of A.
        gate: a :class:`ClassSpecificGate`; ``None`` builds the STD twin (no gate).
        in_channels: expected input channels (checked in ``forward``), or ``None``.

    The gate is used only when labels are passed (training). ``net(x)`` never uses it.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1), num_classes=10)
        >>> x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
        >>> std_logits, csg_logits = net(x, y)
        >>> std_logits.shape, csg_logits.shape
        (torch.Size([4, 10]), torch.Size([4, 10]))
    """

    def __init__(
        self,
        features: nn.Module,
        head: nn.Module,
        num_classes: int,
        num_filters: int,
        gate: ClassSpecificGate | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        if gate is not None and tuple(gate.weight.shape) != (num_classes, num_filters):
            raise ValueError(
                f"gate shape {tuple(gate.weight.shape)} does not match the model: expected "
                f"(num_classes, num_filters) = ({num_classes}, {num_filters})"
            )
        self.features = features
        self.head = head
        self.gate = gate
        self.num_classes = int(num_classes)
        self.num_filters = int(num_filters)
        self.in_channels = in_channels

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """STD logits, or ``(std_logits, csg_logits)`` when ``labels`` are given."""
        check_images(x, self.in_channels)
        activations = self.features(x)
        if labels is None:
            return self.head(activations)
        if self.gate is None:
            raise ValueError(
                "this CSGNet has no gate (an STD model); call net(x) without labels, or build it "
                "with a gate"
            )
        labels = check_labels(labels, self.num_classes, x.shape[0]).to(x.device)
        if isinstance(self.head, GAPLinearHead):
            # GAP is linear: gating the pooled features equals gating the map, at 1/(h·w) the cost.
            pooled = self.head.pooled(activations)
            return self.head.classify(pooled), self.head.classify(self.gate(pooled, labels))
        return self.head(activations), self.head(self.gate(activations, labels))

    def forward_features(self, x: Tensor) -> Tensor:
        """The gated map A(x), (N, K, h, w), without the gate."""
        check_images(x, self.in_channels)
        return self.features(x)

    # --------------------------------------------------------------- accessors
    @property
    def gated_layer(self) -> nn.Module:
        """The module whose output is the gated map (hook it for layer attributions)."""
        return self.features

    @property
    def has_gate(self) -> bool:
        return self.gate is not None

    @property
    def linear_head(self) -> nn.Linear:
        """The final linear layer of a GAP → linear head (the CAM weights W)."""
        if not isinstance(self.head, GAPLinearHead):
            why = getattr(self.head, "not_gap_linear", None)
            raise ValueError(
                (why + "; " if why else f"this model's head is {type(self.head).__name__}, not "
                 "GAP → linear; ")
                + "CAM-style maps need W, use a mode that does not (e.g. mode='activation')"
            )
        return self.head.linear

    def plain_network(self) -> nn.Sequential:
        """The network without the gate, ``head(features(x))``, sharing these parameters."""
        return nn.Sequential(OrderedDict(features=self.features, head=self.head))

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_backbone(
        cls,
        model: nn.Module,
        num_classes: int | None = None,
        layer: str | None = None,
        gate: bool = True,
        gate_init: float = 0.5,
        projection: str = "max",
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        in_channels: int | None = None,
    ) -> "CSGNet":
        """Wrap an existing classifier (its modules are reused, not copied).

        Supported: torchvision ResNet-likes and the small ResNets (children ``...``,
        ``avgpool``, ``fc``; ``layer`` picks the gated stage, default the last one before
        ``avgpool``), :class:`~csg_interp.models.SmallCNN`, torchvision VGG, MobileNetV2 and
        DenseNet (adapters), and timm-style models with ``forward_features``/``forward_head``.

        Args:
            model: the classifier.
            num_classes: C; inferred from the final linear layer when omitted.
            layer: for ResNet-likes, the name of the child whose output is gated.
            gate: ``False`` builds the STD twin (no gate).
            gate_init: initial gate value.
            projection: ``"max"`` or ``"clip"`` (see :func:`~csg_interp.training.project_gate_`).
            normalize: ``(mean, std)`` applied to [0, 1] inputs inside the network.
            in_channels: expected input channels, checked on every forward.

        Raises:
            ValueError: for an unknown layer (the candidates are listed) or an unsupported family.
        """
        features, head, num_filters, inferred_classes = _split(model, layer)
        num_classes = num_classes if num_classes is not None else inferred_classes
        if normalize is not None:
            features = nn.Sequential(OrderedDict(normalize=Normalize(*normalize), body=features))
        csg_gate = (
            ClassSpecificGate(num_classes, num_filters, init=gate_init, projection=projection)
            if gate
            else None
        )
        return cls(features, head, num_classes, num_filters, csg_gate, in_channels)


def _children_until(model: nn.Module, stop: str) -> list[tuple[str, nn.Module]]:
    result = []
    for name, child in model.named_children():
        result.append((name, child))
        if name == stop:
            return result
    raise AssertionError("unreachable")


def _split(model: nn.Module, layer: str | None) -> tuple[nn.Module, nn.Module, int, int]:
    """Return ``(features, head, num_filters, num_classes)`` for a supported model family."""
    names = [name for name, _ in model.named_children()]
    family = type(model).__name__
    if any(cls.__module__.startswith("timm.") for cls in type(model).__mro__):
        return _split_timm(model, layer)
    if family in {"MobileNetV3", "EfficientNet"}:
        raise ValueError(
            f"{family} is not supported: its last stage ends in Hardswish/SiLU, so activations can "
            "be negative and a multiplicative gate does not act as an on/off switch. Pass explicit "
            "modules: CSGNet(features, head, num_classes, num_filters, gate)."
        )
    if isinstance(getattr(model, "fc", None), nn.Linear) and "avgpool" in names:
        fc: nn.Linear = model.fc
        stages = [n for n in names if n not in ("avgpool", "fc")]
        layer = layer or stages[-1]
        if layer not in stages:
            raise ValueError(
                f"unknown layer {layer!r} for {family}; choose one of: {', '.join(stages)}"
            )
        feature_children = _children_until(model, layer)
        features = nn.Sequential(OrderedDict(feature_children))
        rest = [(n, m) for n, m in model.named_children() if n in stages[stages.index(layer) + 1 :]]
        num_filters = _infer_channels(features, model)
        if rest:  # gate an earlier stage: the head runs the remaining stages first
            head: nn.Module = nn.Sequential(
                OrderedDict(rest + [("gap_fc", GAPLinearHead(fc))])
            )
        else:
            head = GAPLinearHead(fc)
        return features, head, num_filters, fc.out_features
    if family == "SmallCNN":
        return model.features, GAPLinearHead(model.fc), model.fc.in_features, model.fc.out_features
    if family == "VGG":
        head = nn.Sequential(OrderedDict(avgpool=model.avgpool, flatten=nn.Flatten(1),
                                         classifier=model.classifier))
        last = model.classifier[-1]
        return model.features, head, _last_conv_channels(model.features), last.out_features
    if family == "MobileNetV2":
        dropout, linear = model.classifier[0], model.classifier[1]
        return model.features, GAPLinearHead(linear, dropout), linear.in_features, linear.out_features
    if family == "DenseNet":
        features = nn.Sequential(OrderedDict(body=model.features, relu=nn.ReLU()))
        linear = model.classifier
        return features, GAPLinearHead(linear), linear.in_features, linear.out_features
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        num_filters = getattr(model, "num_features", None)
        classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
        num_classes = getattr(model, "num_classes", None) or getattr(classifier, "out_features", None)
        if num_filters is None or num_classes is None:
            raise ValueError(
                f"{family} has forward_features/forward_head but no num_features/num_classes; "
                "pass explicit modules to CSGNet(features, head, num_classes, num_filters)"
            )
        return ForwardFeatures(model), ForwardHead(model), int(num_filters), int(num_classes)
    raise ValueError(
        f"cannot find where to put the gate in {family} (children: {', '.join(names)}). Supported: "
        "ResNet-likes (…, avgpool, fc), VGG, MobileNetV2, DenseNet, SmallCNN and timm-style models "
        "with forward_features/forward_head; otherwise pass explicit modules: "
        "CSGNet(features, head, num_classes, num_filters, gate)."
    )


def _split_timm(model: nn.Module, layer: str | None) -> tuple[nn.Module, nn.Module, int, int]:
    """A timm model: the gate on ``forward_features``' output (ViT: the patch-token grid).

    The head is taken as GAP → linear (``"cam"`` exact) only when the model's own
    ``forward_head`` agrees with ``classifier(GAP(A))`` on a probe map; otherwise it is the
    model's ``forward_head`` (the CSG path stays exact, ``"cam"`` is refused with the reason).
    """
    family = type(model).__name__
    if layer is not None:
        raise ValueError(
            f"layer={layer!r} is not supported for timm models: the gate sits on the output of "
            f"{family}.forward_features; drop the layer argument"
        )
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if num_classes < 1 or isinstance(classifier, nn.Identity):
        raise ValueError(
            f"timm {family} was built without a classifier (num_classes=0); build it with the "
            "data set's classes (build_backbone('timm:<name>', num_classes=C))"
        )
    num_filters = int(model.num_features)
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        return _split_vit(model, num_filters, num_classes)
    output_fmt = str(getattr(model, "output_fmt", "NCHW"))
    if output_fmt != "NCHW" or not hasattr(model, "forward_head"):
        raise ValueError(
            f"timm {family} returns {output_fmt} features, not an (N, K, h, w) map: CSGNet gates "
            "timm models with NCHW feature maps (ResNet, ConvNeXt, EfficientNet, ...) and "
            "VisionTransformer; pass explicit modules: CSGNet(features, head, num_classes, "
            "num_filters, gate)"
        )
    features = ForwardFeatures(model)
    if isinstance(classifier, nn.Linear) and _head_is_gap_linear(model, classifier, num_filters):
        head: nn.Module = SharedGAPLinearHead(classifier, getattr(model, "drop_rate", 0.0) or 0.0)
    else:
        head = ForwardHead(
            model,
            not_gap_linear=f"timm {family}'s forward_head is not global average pooling → linear "
            "(e.g. ConvNeXt: pool → LayerNorm → fc; build ConvNeXt with head_norm_first=True "
            "for a GAP → linear head)",
        )
    return features, head, num_filters, num_classes


def _split_vit(model: nn.Module, num_filters: int, num_classes: int):
    """A timm ``VisionTransformer``: the gate on the final patch-token embeddings."""
    pool = getattr(model, "global_pool", "token")
    prefix_pooled = getattr(model, "pool_include_prefix", False) and model.num_prefix_tokens
    if pool != "avg" or getattr(model, "attn_pool", None) is not None or prefix_pooled:
        raise ValueError(
            f"this VisionTransformer pools its tokens with global_pool={pool!r}"
            + (" (prefix tokens included)" if prefix_pooled else "")
            + ": the patch tokens a gate would multiply do not reach its head linearly; build it "
            "with global_pool='avg' (e.g. --model-option global_pool=avg "
            "--model-option class_token=false --model-option fc_norm=false)"
        )
    features = VisionTransformerFeatures(model)
    if isinstance(model.fc_norm, nn.Identity) and isinstance(model.head, nn.Linear):
        head: nn.Module = SharedGAPLinearHead(model.head, model.head_drop.p)
    else:
        head = TokenPoolHead(
            model,
            not_gap_linear="this VisionTransformer normalises after pooling (timm's fc_norm, a "
            "LayerNorm), so its head is not average pooling → linear; build it with "
            "fc_norm=False (--model-option fc_norm=false) for exact 'cam' maps",
        )
    return features, head, num_filters, num_classes


def _head_is_gap_linear(model: nn.Module, classifier: nn.Linear, num_filters: int) -> bool:
    """Whether ``model.forward_head(A) == classifier(GAP(A))`` on a probe map (eval mode).

    The probe uses its own random generator (the global RNG is untouched) and every module's
    train/eval flag is restored afterwards, also when the head raises.
    """
    modes = [(module, module.training) for module in model.modules()]
    reference = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(2, num_filters, 3, 2, generator=generator)
    probe = probe.to(device=reference.device, dtype=reference.dtype)
    try:
        model.eval()
        with torch.no_grad():
            got = model.forward_head(probe)
            expected = classifier(probe.mean(dim=(2, 3)))
    except Exception:  # any head that cannot take a (N, K, h, w) map is not GAP → linear
        return False
    finally:
        for module, training in modes:
            module.training = training
    return got.shape == expected.shape and bool(
        torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    )


def _last_conv_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("no Conv2d layer found in the features")
    return convs[-1].out_channels


def _infer_channels(features: nn.Module, model: nn.Module) -> int:
    """Channels of the features' output: the last BatchNorm/Conv2d inside it."""
    for module in reversed(list(features.modules())):
        if isinstance(module, nn.BatchNorm2d):
            return module.num_features
        if isinstance(module, nn.Conv2d):
            return module.out_channels
    raise ValueError(f"cannot infer the channel count of {type(model).__name__}'s features")
