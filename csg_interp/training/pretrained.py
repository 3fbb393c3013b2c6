"""Start from a model you already have: local weights, frozen BatchNorm, a gate for a trained network.

* :func:`load_pretrained` -- a local state-dict file (or, on a machine with internet, a torchvision
  weights name such as ``ResNet18_Weights.IMAGENET1K_V1``) into a backbone built by
  :func:`csg_interp.models.build_backbone`, with a **new head** when the number of classes differs
  and the first convolution adapted when the number of input channels differs.
* :func:`freeze_batchnorm` -- replace the BatchNorm layers of chosen stages by
  :class:`torchvision.ops.FrozenBatchNorm2d` (``--freeze-bn``): their running statistics and
  affine parameters stop changing. Without it the statistics of frozen stages keep updating in
  train mode, as in the reference code (``docs/method.md`` §1, pitfall 11).
* :func:`fit_gate_only` -- post-hoc differentiation: train only the C×K gate on a frozen, trained
  network (CSG-path cross-entropy + λ·hinge, the gate's projection after every step). With a
  GAP → linear head the pooled features are computed once, so an epoch costs a few matrix
  products.
* :func:`attach_gate` -- put a given gate (e.g. ``csg_interp.metrics.gate_from_mi``'s, the
  MI-derived gate for a network that is not retrained) on a network.
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from csg_interp._utils import eval_mode, resolve_device

from .gate import ClassSpecificGate, check_labels, sparsity_hinge
from .network import CSGNet, GAPLinearHead

__all__ = [
    "WeightsReport",
    "read_state_dict",
    "resolve_weights",
    "load_pretrained",
    "freeze_batchnorm",
    "fit_gate_only",
    "attach_gate",
]

logger = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


@dataclass
class WeightsReport:
    """What :func:`load_pretrained` did.

    Attributes:
        source: the file or weights name.
        loaded: parameter/buffer names copied from the file.
        new_head: names of the final classifier's tensors left at their fresh initialisation
            (the file's head had another number of classes).
        adapted: names of tensors adapted to a different number of input channels.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    new_head: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)


def read_state_dict(path: str | os.PathLike) -> "OrderedDict[str, Tensor]":
    """Read a state-dict file safely (:func:`~csg_interp.training.checkpoint.safe_torch_load`,
    ``weights_only=True``).

    Accepts a plain state dict (torchvision's ``.pth`` files), one wrapped under ``state_dict`` /
    ``model_state_dict`` / ``model`` / ``net``, a csg_interp run checkpoint (``last.pt``; its
    ``model``) or an exported network (``csg-interp export``), keys prefixed by ``module.``
    (DataParallel/DDP checkpoints), and ``.safetensors`` files (timm's checkpoints; needs the
    ``safetensors`` package, which timm installs).

    Args:
        path: the file.

    Returns:
        An ordered dict of tensors.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a torch file, carries code, or holds no tensors.

    Example:
        >>> torch.save(torch.nn.Linear(2, 3).state_dict(), "/tmp/lin.pt")
        >>> sorted(read_state_dict("/tmp/lin.pt"))
        ['bias', 'weight']
    """
    from .checkpoint import safe_torch_load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found; pass --weights PATH to a state-dict file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(f"{path} is a safetensors file: pip install safetensors") from None
        obj = load_file(str(path))  # tensors only, no code: safe by construction
    else:
        obj = safe_torch_load(path)
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path}: expected a dict of tensors (a state dict), got {type(obj).__name__}")
    tensors = OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        tensors[key[len("module.") :] if key.startswith("module.") else key] = value
    return tensors


def resolve_weights(weights: str | os.PathLike, model_name: str | None = None) -> tuple["OrderedDict[str, Tensor]", str]:
    """A state dict from a file, or from a torchvision weights name (downloads; needs internet).

    Names: ``ResNet50_Weights.IMAGENET1K_V2`` (fully qualified), or ``IMAGENET1K_V1`` /
    ``DEFAULT`` together with ``model_name`` (``torchvision.models.get_model_weights``).

    Returns:
        ``(state_dict, source)``.

    Raises:
        FileNotFoundError: the path does not exist and is not a weights name, or the download
            failed (no internet): the message says to pass a local file.
    """
    path = Path(weights)
    if path.is_file():
        return read_state_dict(path), str(path)
    import torchvision

    name = str(weights)
    enum = None
    try:
        if "." in name and "_Weights." in name:
            enum = torchvision.models.get_weight(name)
        elif model_name is not None and (name.isupper() or name == "DEFAULT"):
            enum = torchvision.models.get_model_weights(model_name)[name]
    except (KeyError, ValueError, AttributeError, TypeError):
        enum = None
    if enum is None:
        raise FileNotFoundError(
            f"--weights {name!r}: no such file, and not a torchvision weights name (e.g. "
            "ResNet18_Weights.IMAGENET1K_V1). Pass a local state-dict file."
        )
    try:
        state = enum.get_state_dict(progress=False)
    except Exception as error:  # URLError, OSError, HTTPError: no internet
        raise FileNotFoundError(
            f"could not download {enum} ({type(error).__name__}); without internet, download "
            f"{enum.url} elsewhere and pass --weights PATH to the file"
        ) from error
    return OrderedDict(state), str(enum)


def _final_linear_name(model: nn.Module) -> str | None:
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return names[-1] if names else None


def _first_conv_name(model: nn.Module) -> str | None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    return None


def _adapt_input_channels(weight: Tensor, in_channels: int) -> Tensor:
    """RGB conv weight (O, 3, k, k) → (O, in_channels, k, k).

    1 channel: sum over RGB (a grey image equal on every channel then gives the same response);
    more: the RGB kernels repeated cyclically and scaled by 3 / in_channels. (The rule timm's
    ``adapt_input_conv`` documents.)
    """
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


def _short(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def load_pretrained(model: nn.Module, weights: str | os.PathLike | dict, model_name: str | None = None) -> WeightsReport:
    """Load weights into a backbone classifier, with a new head for a different class count.

    The file may hold the backbone's own names (torchvision's, e.g. ``layer4.1.conv2.weight``)
    or a CSGNet's / exported network's (``features.body.…``, ``head.linear.…``: a csg_interp
    run's ``last.pt`` or ``csg-interp export``); the latter is loaded through a CSGNet wrapped
    around ``model``, which shares its modules. A gate and the normalisation in the file are not
    loaded (the new run has its own data statistics).

    Every tensor of ``model`` must be in the file with the same shape, except:

    * the final ``nn.Linear`` (the head): when its shape differs, it keeps its fresh random
      initialisation -- a new head for the data set's classes;
    * the first ``nn.Conv2d``: an RGB kernel is adapted to 1 or more input channels (summed for
      grey, see :func:`_adapt_input_channels`);
    * ``num_batches_tracked`` buffers, which may be missing (older files).

    Args:
        model: the backbone (e.g. ``build_backbone("resnet18", num_classes=10)``), before it is
            wrapped into a :class:`CSGNet`.
        weights: a state-dict file, a torchvision weights name (needs internet), or a state dict.
        model_name: the torchvision model name, to resolve short weights names (``DEFAULT``).

    Returns:
        A :class:`WeightsReport`.

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for keys that do not match the model (listed), or shapes that differ
            outside the head and the first convolution.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> torch.save(build_backbone("resnet18", 1000).state_dict(), "/tmp/r18.pt")
        >>> report = load_pretrained(build_backbone("resnet18", num_classes=10), "/tmp/r18.pt")
        >>> report.new_head
        ['fc.weight', 'fc.bias']
    """
    if isinstance(weights, dict):
        state, source = OrderedDict(weights), "<state dict>"
    else:
        state, source = resolve_weights(weights, model_name)
    report = WeightsReport(source)
    if any(k.startswith(("features.", "head.")) for k in state) and not any(k in model.state_dict() for k in state):
        # A CSGNet (run checkpoint) or an exported plain network: same modules, wrapped names.
        has_normalize = any(k.startswith("features.normalize.") for k in state)
        channels = state["features.normalize.mean"].numel() if has_normalize else 1
        target = CSGNet.from_backbone(
            model, gate=False, normalize=((0.0,) * channels, (1.0,) * channels) if has_normalize else None
        )  # fmt: skip
        state = OrderedDict(
            (k, v) for k, v in state.items() if not k.startswith(("gate.", "features.normalize."))
        )
        own_model = target
    else:
        own_model = model
    own = {k: v for k, v in own_model.state_dict().items() if not k.startswith("features.normalize.")}
    head = _final_linear_name(own_model)
    head_keys = {f"{head}.weight", f"{head}.bias"} if head is not None else set()
    first_conv = _first_conv_name(own_model)
    first_key = f"{first_conv}.weight" if first_conv is not None else None
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match {type(model).__name__}: missing {_short(missing) or 'none'}; "
            f"unexpected {_short(unexpected) or 'none'}. Was it saved from the same architecture "
            "(torchvision names, e.g. fc.weight)?"
        )
    to_load: dict[str, Tensor] = {}
    mismatched = []
    for key, value in state.items():
        target = own[key]
        if value.shape == target.shape:
            to_load[key] = value.to(target.dtype)
            report.loaded.append(key)
        elif key in head_keys:
            report.new_head.append(key)
        elif key == first_key and value.dim() == 4 and value.shape[0] == target.shape[0] \
                and value.shape[2:] == target.shape[2:]:  # fmt: skip
            to_load[key] = _adapt_input_channels(value, target.shape[1]).to(target.dtype)
            report.adapted.append(key)
        else:
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(target.shape)}")
    if mismatched:
        raise ValueError(
            f"{source}: shapes differ outside the head: {_short(mismatched)}; the file was saved "
            "from a different architecture or width"
        )
    own_model.load_state_dict(to_load, strict=False)
    if report.new_head:
        logger.info("weights %s: new head %s (fresh initialisation)", source, ", ".join(report.new_head))
    return report


def freeze_batchnorm(module: nn.Module, within: Iterable[nn.Module] | None = None) -> int:
    """Replace every ``BatchNorm2d`` inside ``module`` by :class:`torchvision.ops.FrozenBatchNorm2d`.

    The frozen layer normalises with the running statistics in train mode too, and its affine
    parameters become buffers (no gradient). Apply it to the stages a run does not train.

    Args:
        module: the network (or a part of it) whose layers are replaced, e.g. ``model.layer1``.
        within: only the BatchNorm layers that also sit inside one of these modules (e.g. the
            untrained stages of :func:`~csg_interp.training.runs.feature_stages`, which are
            views onto ``module``).

    Returns:
        The number of layers replaced.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> model = build_backbone("resnet8", 10, 1)
        >>> freeze_batchnorm(model.layer1)
        2
    """
    from torchvision.ops import FrozenBatchNorm2d

    if isinstance(module, nn.BatchNorm2d):
        raise ValueError("pass the module that contains the BatchNorm layers, not the layer itself")
    chosen = None
    if within is not None:
        chosen = {id(m) for part in within for m in part.modules() if isinstance(m, nn.BatchNorm2d)}
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d) and (chosen is None or id(child) in chosen):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                with torch.no_grad():
                    if child.affine:
                        frozen.weight.copy_(child.weight)
                        frozen.bias.copy_(child.bias)
                    if child.track_running_stats:
                        frozen.running_mean.copy_(child.running_mean)
                        frozen.running_var.copy_(child.running_var)
                device = next(iter(child.buffers()), torch.empty(0)).device
                setattr(parent, name, frozen.to(device))
                replaced += 1
    return replaced


def attach_gate(net: CSGNet, weight: Tensor, projection: str = "max") -> CSGNet:
    """Give ``net`` the gate ``weight`` (C×K), e.g. ``csg_interp.metrics.gate_from_mi``'s.

    The network itself is unchanged; ``net(x)`` still ignores the gate.

    Args:
        net: a CSGNet (STD or CSG).
        weight: C×K tensor in [0, 1].
        projection: the gate's projection for any later training.

    Returns:
        ``net``, with ``net.gate`` set.

    Raises:
        ValueError: if the shape is not (num_classes, num_filters) or values leave [0, 1].
    """
    weight = torch.as_tensor(weight, dtype=torch.float32)
    if tuple(weight.shape) != (net.num_classes, net.num_filters):
        raise ValueError(
            f"gate shape {tuple(weight.shape)} does not match the network: expected "
            f"(num_classes, num_filters) = ({net.num_classes}, {net.num_filters})"
        )
    if not torch.isfinite(weight).all() or weight.min() < 0 or weight.max() > 1:
        raise ValueError("gate entries must be finite and lie in [0, 1]")
    device = next(net.parameters()).device
    gate = ClassSpecificGate(net.num_classes, net.num_filters, projection=projection).to(device)
    with torch.no_grad():
        gate.weight.copy_(weight.to(device))
    net.gate = gate
    return net


@torch.no_grad()
def _pooled_features(net: CSGNet, loader: DataLoader, device: torch.device) -> tuple[Tensor, Tensor]:
    feats, labels = [], []
    for images, targets in loader:
        feats.append(net.head.pooled(net.features(images.to(device))).float())
        labels.append(targets.to(device))
    return torch.cat(feats), torch.cat(labels)


def fit_gate_only(
    net: CSGNet,
    data: Dataset | tuple[Tensor, Tensor],
    epochs: int = 20,
    lr: float = 1e-2,
    tau: float = 0.1,
    lam: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> list[dict[str, float]]:
    """Train only the gate of a frozen, trained network (cheap post-hoc differentiation).

    Each step minimises ``CE(csg_logits, y) + lam · max(0, ‖G‖₁ − τ·C·K)`` over the gate alone
    (Adam, ``lr``) and then applies the gate's projection, as a CSG epoch of the reference does
    (``docs/method.md`` §2–§4) -- but the backbone and head stay fixed, in eval mode. A network
    without a gate gets a fresh one (init 0.5, ``max`` projection). With a GAP → linear head, the
    pooled features are computed once and each step costs ``O(N·K·C)``; other heads run per
    batch.

    Args:
        net: a trained CSGNet; its parameters are not changed.
        data: a dataset of ``(image, label)`` or a tuple ``(images, labels)``, images in [0, 1].
        epochs: passes over ``data``.
        lr: the gate's learning rate.
        tau: the density bound τ of the hinge.
        lam: λ.
        batch_size: samples per step.
        seed: shuffling seed.
        device: where to compute (default: the network's).

    Returns:
        One dict per epoch: ``epoch``, ``loss`` (mean over steps), ``density``.

    Example:
        >>> from csg_interp.models import build_backbone
        >>> net = CSGNet.from_backbone(build_backbone("smallcnn", 3, 1), gate=False)
        >>> x, y = torch.rand(12, 1, 8, 8), torch.arange(12) % 3
        >>> history = fit_gate_only(net, (x, y), epochs=2, batch_size=4)
        >>> net.gate.weight.shape, len(history)
        (torch.Size([3, 32]), 2)
    """
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    if lr <= 0 or lam < 0:
        raise ValueError(f"lr must be > 0 and lam ≥ 0, got lr={lr}, lam={lam}")
    device = resolve_device(device, net)
    if isinstance(data, tuple):
        images, labels = data
        check_labels(labels, net.num_classes, images.shape[0])
        data = TensorDataset(images, labels.long())
    if net.gate is None:
        net.gate = ClassSpecificGate(net.num_classes, net.num_filters).to(device)
    gate = net.gate
    frozen = [p for name, p in net.named_parameters() if not name.startswith("gate.")]
    before = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    gate.weight.requires_grad_(True)
    optimizer = torch.optim.Adam([gate.weight], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    gap_head = isinstance(net.head, GAPLinearHead)
    history = []
    with eval_mode(net):
        try:
            if gap_head:
                batches = DataLoader(data, batch_size=batch_size)
                pooled, targets = _pooled_features(net, batches, device)
                check_labels(targets, net.num_classes)
                loader: Iterable = DataLoader(TensorDataset(pooled, targets), batch_size=batch_size,
                                              shuffle=True, generator=generator)
            else:
                loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
            gate.project_()  # start feasible: the 0.5 init becomes all-pass columns
            for epoch in range(epochs):
                losses = []
                for inputs, targets in loader:
                    inputs, targets = inputs.to(device), targets.to(device)
                    if gap_head:
                        logits = net.head.classify(gate(inputs, targets))
                    else:
                        with torch.no_grad():
                            activations = net.features(inputs)
                        logits = net.head(gate(activations, targets))
                    hinge = sparsity_hinge(gate.weight, tau)
                    loss = F.cross_entropy(logits, targets) + lam * hinge
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    gate.project_()
                    losses.append(float(loss.detach()))
                history.append({"epoch": epoch, "loss": sum(losses) / len(losses),
                                "density": float(gate.density().detach())})
        finally:
            for p, flag in zip(frozen, before):
                p.requires_grad_(flag)
    return history
