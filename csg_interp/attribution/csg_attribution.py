"""CSGAttribution: class-specific maps from the gate and the gated feature map, as a Captum method.

Three modes, all computed from one forward pass (no backward) of the plain network ``net(x)``;
``A`` is the gated layer's output (N, K, h, w), ``G`` the C×K gate, ``W`` the C×K weight of a
GAP → linear head:

* ``"cam"`` -- gate-weighted class activation map ``M_c = Σ_k G[c,k]·W[c,k]·A_k``. With an
  all-ones gate it is the CAM of Zhou et al. (2016); with the learned gate its spatial mean plus
  the bias is exactly the CSG-path logit of class ``c`` (``docs/method.md`` §1).
* ``"activation"`` -- class-filter activation ``M_c = Σ_k G[c,k]·A_k`` (any head).
* ``"top_filters"`` -- ``Σ_{k ∈ top-n} G[c,k]·A_k`` over the ``n`` filters with the largest
  gated mean activation ``G[c,k]·mean(A_k(x))`` for this example (ties: the lower index).

For an STD model (no learned gate) pass an MI-derived gate, ``gate_from_mi(mi_matrix)``, so that
both models are explained the same way (see ``docs/attribution.md``).

Sources: Liang et al., *Training Interpretable CNNs by Differentiating Class-specific Filters*,
ECCV 2020 (arXiv:2007.08194); Zhou et al., *Learning Deep Features for Discriminative
Localization*, CVPR 2016 (CAM). The Captum contract followed here is ``LayerGradCam``'s
(``captum/attr/_core/layer/grad_cam.py``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from captum._utils.typing import TargetType
from captum.attr import LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from ..errors import InvalidParameterError, check_pixel_values
from ..training.gate import ClassSpecificGate, rank_filters
from ..training.network import CSGNet, check_images

__all__ = ["CSGAttribution", "MODES", "expand_to_input", "to_visualization"]

MODES: tuple[str, ...] = ("cam", "activation", "top_filters")


def _gate_tensor(gate: Tensor | nn.Module) -> Tensor:
    """The C×K matrix of a gate given as a tensor, a parameter or a :class:`ClassSpecificGate`."""
    if isinstance(gate, ClassSpecificGate):
        gate = gate.weight
    if not isinstance(gate, Tensor):
        raise ValueError(
            f"gate must be a C×K tensor or a ClassSpecificGate, got {type(gate).__name__}"
        )
    if gate.dim() != 2:
        raise ValueError(
            f"gate must be a C×K matrix (classes × filters), got shape {tuple(gate.shape)}; "
            "for an STD model build one with csg_interp.metrics.gate_from_mi(mi_matrix)"
        )
    if not gate.dtype.is_floating_point:
        gate = gate.float()
    return gate


class CSGAttribution(LayerAttribution):
    r"""Class-specific attribution from a class × filter gate and the gated layer's activations.

    A Captum :class:`~captum.attr.LayerAttribution`: the output has the layer's spatial shape with
    one channel, ``N×1×h×w`` (``N×K×h×w`` with ``attr_dim_summation=False``), and is not
    upsampled -- use ``LayerAttribution.interpolate(attr, (H, W), "bilinear")`` for input-size
    maps. No mode uses gradients, so it is not a ``GradientAttribution``; the cost is one forward
    pass (run under ``torch.no_grad()`` unless an input requires grad).

    Args:
        forward_func: the model (or any function of the inputs) returning logits (N, C). For a
            :class:`~csg_interp.training.CSGNet` this is ``net`` itself (the STD path).
        layer: the module whose output is the gated map A (N, K, h, w), e.g. ``net.gated_layer``.
        gate: the C×K gate (tensor, parameter or ``ClassSpecificGate``); for an STD model an
            MI-derived gate (``csg_interp.metrics.gate_from_mi``).
        mode: ``"cam"`` (default), ``"activation"`` or ``"top_filters"`` (module docstring).
        weight: the C×K weight ``W`` of the final linear layer, needed by ``"cam"``. Taken from
            ``forward_func.linear_head`` when ``forward_func`` is a ``CSGNet``.
        top_n: the number of filters kept by ``"top_filters"``.

    Raises:
        ValueError: unknown mode, a gate or weight of the wrong shape, a layer that is not a
            submodule of the model, ``"cam"`` without a GAP → linear head.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1), num_classes=10).eval()
        >>> csg = CSGAttribution.from_net(net)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> csg.attribute(x, target=3).shape
        torch.Size([2, 1, 7, 7])
        >>> LayerAttribution.interpolate(csg.attribute(x, target=3), (28, 28), "bilinear").shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        layer: nn.Module,
        gate: Tensor | nn.Module,
        mode: str = "cam",
        weight: Tensor | None = None,
        top_n: int = 5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if not isinstance(layer, nn.Module):
            raise ValueError(f"layer must be an nn.Module, got {type(layer).__name__}")
        if isinstance(forward_func, nn.Module) and not any(
            module is layer for module in forward_func.modules()
        ):
            raise ValueError(
                f"the layer {type(layer).__name__} is not a submodule of the model "
                f"{type(forward_func).__name__}; pass one of its modules, e.g. net.gated_layer"
            )
        LayerAttribution.__init__(self, forward_func, layer)
        self._gate = gate
        gate_matrix = _gate_tensor(gate)
        num_classes, num_filters = gate_matrix.shape
        if mode == "cam" and weight is None:
            if isinstance(forward_func, CSGNet):
                weight = forward_func.linear_head.weight  # ValueError for other heads
            else:
                raise ValueError(
                    "mode 'cam' needs the C×K weight W of the final linear layer after global "
                    "average pooling: pass weight=model.fc.weight, or use mode='activation'"
                )
        if weight is not None and tuple(weight.shape) != (num_classes, num_filters):
            raise ValueError(
                f"weight has shape {tuple(weight.shape)} but the gate is {num_classes}×"
                f"{num_filters}; W must be (num_classes, num_filters) like the gate"
            )
        if mode == "top_filters" and not 1 <= int(top_n) <= num_filters:
            raise ValueError(f"top_n must lie in [1, {num_filters}] (the filters), got {top_n}")
        self.mode = mode
        self.weight = weight
        self.top_n = int(top_n)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_net(
        cls,
        net: CSGNet,
        gate: Tensor | nn.Module | None = None,
        mode: str = "cam",
        top_n: int = 5,
    ) -> "CSGAttribution":
        """Explain a :class:`~csg_interp.training.CSGNet` through its gated layer.

        Args:
            net: the network (``net(x)`` is the STD path the maps explain).
            gate: the C×K gate; default ``net.gate``. Required for an STD model, e.g.
                ``gate_from_mi(mutual_information(...))``.
            mode: see the class docstring.
            top_n: filters kept by ``"top_filters"``.

        Returns:
            The attribution method.

        Example:
            >>> from csg_interp.models import build_backbone
            >>> std = CSGNet.from_backbone(build_backbone("resnet8", 10, 1), gate=False)
            >>> csg = CSGAttribution.from_net(std, gate=torch.ones(10, 64))
        """
        if not isinstance(net, CSGNet):
            raise ValueError(
                f"from_net needs a CSGNet, got {type(net).__name__}; use "
                "CSGAttribution(model, layer, gate, weight=...) for other models"
            )
        if gate is None:
            if net.gate is None:
                raise ValueError(
                    "this is an STD model (no gate): pass gate=gate_from_mi(mi_matrix) from "
                    "csg_interp.metrics so it is explained like the CSG model"
                )
            gate = net.gate
        shape = tuple(_gate_tensor(gate).shape)
        if shape != (net.num_classes, net.num_filters):
            raise InvalidParameterError(
                f"`gate` has shape {shape} but this network has {net.num_classes} classes and "
                f"{net.num_filters} filters in its gated layer; pass a "
                f"({net.num_classes}, {net.num_filters}) gate, e.g. gate_from_mi of this "
                "network's MI matrix"
            )
        return cls(net, net.gated_layer, gate, mode=mode, top_n=top_n)

    # ------------------------------------------------------------------ properties
    @property
    def gate(self) -> Tensor:
        """The C×K gate, detached (read at every call, so a training gate stays current)."""
        return _gate_tensor(self._gate).detach()

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def has_convergence_delta(self) -> bool:
        return False

    # ------------------------------------------------------------------ the method
    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        relu_attributions: bool = False,
        attr_dim_summation: bool = True,
    ) -> Tensor | tuple[Tensor]:
        r"""Class maps of ``target`` at the gated layer's resolution.

        Args:
            inputs: the images (N, C_in, H, W) in [0, 1], or a tuple of input tensors whose first
                element is the image batch.
            target: the class(es) to explain, with Captum's semantics for 2-D outputs: an ``int``
                or 0-d tensor for every example, or a list / 1-D tensor of N classes.
                **Difference from Captum:** ``None`` means the predicted class (argmax of the
                logits) of each example, not "the output as is".
            additional_forward_args: extra arguments of ``forward_func`` after the inputs.
            relu_attributions: clamp the maps at 0 (as the CAM/Grad-CAM papers do). Default
                ``False``, like ``LayerGradCam``: the sign is kept.
            attr_dim_summation: ``False`` returns the per-filter terms (N, K, h, w) instead of
                their sum over filters (``"top_filters"``: the dropped filters are zero).

        Returns:
            Tensor (N, 1, h, w), or (N, K, h, w) when ``attr_dim_summation=False``; a 1-tuple
            holding it when ``inputs`` is a tuple (Captum's "output mirrors input" rule, which
            ``captum.metrics.sensitivity_max`` relies on -- ``LayerGradCam`` returns a bare
            tensor there and so fails ``sensitivity_max``).

        Raises:
            ValueError: a target out of range or of the wrong length, a tuple target, inputs
                that are not a 4-D float batch, a layer output that is not (N, K, h, w), a gate
                that does not match the layer or the model's classes.
        """
        activations, logits = self.layer_output_and_logits(inputs, additional_forward_args)
        classes = self.resolve_targets(target, logits)
        maps = self.maps_from_activations(
            activations, classes, relu_attributions=relu_attributions,
            attr_dim_summation=attr_dim_summation,
        )  # fmt: skip
        return (maps,) if isinstance(inputs, tuple) else maps

    # ------------------------------------------------------------------ every class at once
    @log_usage()
    def attribute_all_classes(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        additional_forward_args: Any = None,
        relu_attributions: bool = False,
    ) -> Tensor | tuple[Tensor]:
        r"""The maps of **every** class from one forward pass, (N, C, h, w).

        Channel ``c`` of the result is what ``attribute(inputs, target=c)`` returns for every
        example (its single channel), up to float rounding: the per-class sums over filters are
        done as one matrix product ``Σ_k coef[n, c, k]·A[n, k]`` instead of C separate sums.
        No mode needs a backward pass, so the cost is one forward plus that product -- where a
        gradient method (``LayerGradCam``) needs one backward per class. This is the method to
        use for multi-label questions ("where is each class?") and for per-class displays.

        Args:
            inputs: the images (N, C_in, H, W) in [0, 1], or a tuple whose first element is the
                image batch (as :meth:`attribute`).
            additional_forward_args: extra arguments of ``forward_func`` after the inputs.
            relu_attributions: clamp the maps at 0.

        Returns:
            Tensor (N, C, h, w), channel c = class c; a 1-tuple holding it when ``inputs`` is a
            tuple (Captum's "output mirrors input" rule, as :meth:`attribute`).

        Raises:
            ValueError: as :meth:`attribute` for inputs, layer and gate shapes.

        Example:
            >>> from csg_interp.models import build_backbone
            >>> net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1), num_classes=10)
            >>> csg = CSGAttribution.from_net(net.eval())
            >>> x = torch.rand(2, 1, 28, 28)
            >>> maps = csg.attribute_all_classes(x)
            >>> maps.shape
            torch.Size([2, 10, 7, 7])
            >>> torch.allclose(maps[:, 3:4], csg.attribute(x, target=3), atol=1e-6)
            True
        """
        activations, _ = self.layer_output_and_logits(inputs, additional_forward_args)
        maps = torch.einsum(
            "nck,nkhw->nchw", self.all_class_filter_weights(activations), activations
        )
        if relu_attributions:
            maps = F.relu(maps)
        return (maps,) if isinstance(inputs, tuple) else maps

    def all_class_filter_weights(self, activations: Tensor) -> Tensor:
        """The filter coefficients (N, C, K) of every class; row c is :meth:`filter_weights`'s
        result for ``classes = c`` (``"top_filters"``: the same ranking, ties to the lower
        filter index)."""
        gate = self.gate.to(activations.device, activations.dtype)
        coefficients = gate[None].expand(activations.shape[0], -1, -1)
        if self.mode == "cam":
            assert self.weight is not None  # set in __init__ for mode "cam"
            weight = self.weight.detach().to(activations.device, activations.dtype)
            return coefficients * weight[None]
        if self.mode == "top_filters":
            scores = coefficients * activations.detach().mean(dim=(2, 3))[:, None, :]
            order = rank_filters(scores)
            keep = torch.zeros_like(scores).scatter_(2, order[:, :, : self.top_n], 1.0)
            return coefficients * keep
        return coefficients

    # ------------------------------------------------------------------ building blocks
    def layer_output_and_logits(
        self, inputs: Tensor | tuple[Tensor, ...], additional_forward_args: Any = None
    ) -> tuple[Tensor, Tensor]:
        """One forward pass: the gated layer's output A (N, K, h, w) and the logits (N, C).

        The forward hook is removed before returning, also when the forward raises.
        """
        input_tuple = _format_tensor_into_tuples(inputs)
        if not input_tuple:
            raise ValueError("inputs is empty; pass a batch of images (N, C, H, W)")
        check_images(input_tuple[0])
        # NaN/inf: an error; outside [0, 1] (a CSGNet normalises inside): a warning, once
        check_pixel_values(input_tuple[0], "inputs", warn_range=isinstance(self.forward_func, CSGNet))
        extra = _format_additional_forward_args(additional_forward_args) or ()
        captured: list[Tensor] = []

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            captured.append(output)

        handle = self.layer.register_forward_hook(hook)
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in input_tuple)
        try:
            with torch.set_grad_enabled(needs_grad):
                logits = self.forward_func(*input_tuple, *extra)
        finally:
            handle.remove()
        if not captured:
            raise ValueError(
                f"the layer {type(self.layer).__name__} was not called by the forward function; "
                "pass a module the model actually runs (e.g. net.gated_layer)"
            )
        activations = captured[-1]
        if not isinstance(activations, Tensor) or activations.dim() != 4:
            shape = (
                tuple(activations.shape) if isinstance(activations, Tensor) else type(activations)
            )
            raise ValueError(
                f"the layer's output must be a conv map (N, K, h, w), got {shape}; "
                "attribute to the last convolutional stage"
            )
        num_classes, num_filters = self.gate.shape
        if activations.shape[1] != num_filters:
            raise ValueError(
                f"the gate has {num_filters} filters (columns) but the layer outputs "
                f"{activations.shape[1]} channels; the gate must be (num_classes, "
                f"{activations.shape[1]})"
            )
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ValueError(
                "forward_func must return logits of shape (N, num_classes), got "
                f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}"
            )
        if logits.shape[1] != num_classes:
            raise ValueError(
                f"the gate has {num_classes} classes (rows) but the model outputs "
                f"{logits.shape[1]}; the gate must be ({logits.shape[1]}, {num_filters})"
            )
        return activations, logits

    def resolve_targets(self, target: TargetType, logits: Tensor) -> Tensor:
        """Captum's target semantics for 2-D outputs, as one class index per example.

        Args:
            target: ``None`` (predicted class), an ``int`` / 0-d tensor (every example), a list or
                1-D tensor of length N (one class per example).
            logits: the model's output (N, C).

        Returns:
            Long tensor (N,) on the logits' device.
        """
        num_examples, num_classes = logits.shape
        if target is None:
            return logits.detach().argmax(dim=1)
        if isinstance(target, tuple):
            raise ValueError(
                "tuple targets index outputs with more than 2 dimensions; a classifier's target "
                "is an int, a list of ints or a 1-D tensor of class indices"
            )
        if isinstance(target, bool):
            raise ValueError(f"target must be a class index, got {target!r}")
        if isinstance(target, numbers.Integral):  # int, numpy integers
            classes = torch.full((num_examples,), int(target), dtype=torch.long)
        elif isinstance(target, Tensor) and target.numel() == 1:
            classes = target.reshape(1).long().expand(num_examples)
        elif isinstance(target, (Tensor, list)):
            classes = torch.as_tensor(target)
            if classes.dim() != 1 or classes.shape[0] != num_examples:
                raise ValueError(
                    f"a per-example target needs one class per example: got "
                    f"{tuple(classes.shape)} for a batch of {num_examples}"
                )
        else:
            raise ValueError(
                f"target must be None, an int, a list of ints or a tensor, got "
                f"{type(target).__name__}"
            )
        if classes.dtype.is_floating_point or classes.dtype == torch.bool:
            raise ValueError(f"targets must be integer class indices, got dtype {classes.dtype}")
        classes = classes.long().to(logits.device)
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
            bad = int(classes.max()) if int(classes.max()) >= num_classes else int(classes.min())
            raise ValueError(
                f"target {bad} is out of range for {num_classes} classes "
                f"(valid: 0..{num_classes - 1})"
            )
        return classes

    def filter_weights(self, activations: Tensor, classes: Tensor) -> Tensor:
        """The per-example filter coefficients (N, K) that multiply A_k for the chosen mode."""
        gate = self.gate.to(activations.device, activations.dtype)
        rows = gate.index_select(0, classes)
        if self.mode == "cam":
            assert self.weight is not None  # set in __init__ for mode "cam"
            weight = self.weight.detach().to(activations.device, activations.dtype)
            return rows * weight.index_select(0, classes)
        if self.mode == "top_filters":
            keep = self.top_filter_indices(activations, classes)
            mask = torch.zeros_like(rows).scatter_(1, keep, 1.0)
            return rows * mask
        return rows

    def top_filter_indices(
        self, activations: Tensor, classes: Tensor, n: int | None = None
    ) -> Tensor:
        """Indices (N, n) of the filters with the largest gated mean activation, ranked.

        The score of filter k for example i is :meth:`filter_scores`; ties go to the lower
        filter index (:func:`rank_filters`).
        """
        n = self.top_n if n is None else int(n)
        return rank_filters(self.filter_scores(activations, classes))[:, :n]

    def filter_scores(self, activations: Tensor, classes: Tensor) -> Tensor:
        """How much each filter fires for each example's class: ``G[c_i, k] · mean_hw A_k(x_i)``.

        Args:
            activations: A (N, K, h, w).
            classes: long tensor (N,) of classes in range.

        Returns:
            The scores (N, K), detached from the graph.
        """
        gate = self.gate.to(activations.device, activations.dtype)
        return gate.index_select(0, classes) * activations.detach().mean(dim=(2, 3))

    def maps_from_activations(
        self,
        activations: Tensor,
        classes: Tensor,
        relu_attributions: bool = False,
        attr_dim_summation: bool = True,
    ) -> Tensor:
        """The maps from an already computed layer output A and one class per example.

        Args:
            activations: A (N, K, h, w).
            classes: long tensor (N,) of classes in range.
            relu_attributions: clamp at 0.
            attr_dim_summation: sum over filters (N, 1, h, w) or keep them (N, K, h, w).

        Returns:
            The maps.
        """
        coefficients = self.filter_weights(activations, classes)
        maps = coefficients[:, :, None, None] * activations
        if attr_dim_summation:
            maps = maps.sum(dim=1, keepdim=True)
        if relu_attributions:
            maps = F.relu(maps)
        return maps


def expand_to_input(
    attributions: Tensor,
    inputs: Tensor,
    interpolate_mode: str = "nearest",
) -> Tensor:
    """Upsample layer maps (N, 1, h, w) to the inputs' shape (N, C_in, H, W).

    What ``captum.metrics.infidelity`` needs: it asserts ``attributions.shape == inputs.shape``.
    Each map is interpolated to (H, W) with :meth:`LayerAttribution.interpolate` and repeated
    over the input channels (not divided: use ``normalize=True`` in ``infidelity`` when the scale
    does not matter).

    Args:
        attributions: maps (N, 1, h, w).
        inputs: the inputs (N, C_in, H, W) whose shape to match.
        interpolate_mode: ``"nearest"`` (default, keeps each cell's value) or ``"bilinear"``.

    Returns:
        Tensor of the inputs' shape.

    Example:
        >>> expand_to_input(torch.ones(2, 1, 7, 7), torch.zeros(2, 3, 28, 28)).shape
        torch.Size([2, 3, 28, 28])
    """
    if attributions.dim() != 4 or attributions.shape[1] != 1:
        raise ValueError(
            f"expected summed maps (N, 1, h, w), got {tuple(attributions.shape)}; call attribute "
            "with attr_dim_summation=True"
        )
    check_images(inputs)
    if attributions.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"{attributions.shape[0]} maps for {inputs.shape[0]} inputs; they must match"
        )
    upsampled = LayerAttribution.interpolate(
        attributions, tuple(inputs.shape[2:]), interpolate_mode
    )
    return upsampled.expand(-1, inputs.shape[1], -1, -1).contiguous()


def to_visualization(
    attributions: Tensor,
    size: Sequence[int] | None = None,
    interpolate_mode: str = "bilinear",
):
    """The transform for ``captum.attr.visualization.visualize_image_attr``: one HWC numpy map.

    Args:
        attributions: maps (N, 1, h, w) or (1, h, w) of one example.
        size: (H, W) to upsample to (bilinear by default); ``None`` keeps the layer resolution.
        interpolate_mode: any mode of :meth:`LayerAttribution.interpolate`.

    Returns:
        ``numpy.ndarray`` (H, W, 1) of the first example -- channels last, as Captum expects.

    Example:
        >>> to_visualization(torch.ones(1, 1, 7, 7), (28, 28)).shape
        (28, 28, 1)
    """
    if attributions.dim() == 3:
        attributions = attributions.unsqueeze(0)
    if attributions.dim() != 4 or attributions.shape[1] != 1:
        raise ValueError(
            f"expected maps (N, 1, h, w) or (1, h, w), got {tuple(attributions.shape)}"
        )
    maps = attributions[:1].detach().float()
    if size is not None:
        maps = LayerAttribution.interpolate(maps, tuple(int(s) for s in size), interpolate_mode)
    return maps[0].permute(1, 2, 0).cpu().numpy()
