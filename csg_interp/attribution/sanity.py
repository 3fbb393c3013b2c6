"""Checks a careful user runs before trusting a saliency map: model-parameter randomisation and
deletion / insertion faithfulness.

* :func:`sanity_check` -- the cascading model-parameter randomisation test of Adebayo et al.,
  *Sanity Checks for Saliency Maps*, NeurIPS 2018: re-initialise the model's parameters from the
  head towards the input, one unit at a time and cumulatively, and measure how much each
  method's maps still rank-correlate (Spearman, ``scipy.stats.spearmanr``) with the maps of the
  trained model. A map that does not change when the model is destroyed does not explain it.
* :func:`deletion_insertion` -- the deletion / insertion AUCs of Petsiuk et al., *RISE*, BMVC
  2018, with the protocol of torch-cam 0.5.0's ``DeletionInsertionMetric`` (so the two can be
  cross-checked): maps resized bilinearly to the input, positions ranked by value (stable sort,
  ties to the lower flat index), ``steps`` perturbation intervals of ``ceil(P / steps)`` positions,
  a baseline (zeros by default) shared by all channels, the softmax score of the target class,
  trapezoid AUC over the perturbed fraction.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils import eval_mode
from ..training.gate import ClassSpecificGate
from ..training.network import CSGNet, check_images

__all__ = [
    "SanityResult",
    "cascade_units",
    "sanity_check",
    "default_methods",
    "DeletionInsertion",
    "deletion_insertion",
]

MethodFactory = Callable[[nn.Module], Any]


# ============================================================================ randomisation
def cascade_units(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The units randomised one after another, from the head towards the input.

    For a :class:`~csg_interp.training.CSGNet`: ``head``, then ``gate`` (if any), then the
    parameter-holding children of ``features`` in reverse order, looking through wrappers that
    hold a single such child (the ``normalize``/``body`` pair, a SmallCNN's ``features``), so a
    ResNet gives ``layer3``, ``layer2``, ``layer1``, ``bn1``, ``conv1`` and a SmallCNN its
    BatchNorm and conv layers, last first. For any other module: its parameter-holding children,
    reversed.

    Args:
        net: the model.

    Returns:
        ``(name, module)`` pairs in randomisation order.
    """

    def with_params(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
        return [
            (f"{prefix}{name}", child)
            for name, child in module.named_children()
            if any(True for _ in child.parameters())
        ]

    def stages(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
        """Parameter-holding children, looking through wrappers with a single such child."""
        children = with_params(module, prefix)
        while len(children) == 1 and any(True for _ in children[0][1].children()):
            name, module = children[0]
            children = with_params(module, f"{name}.")
        return children

    if isinstance(net, CSGNet):
        units: list[tuple[str, nn.Module]] = [("head", net.head)]
        if net.gate is not None:
            units.append(("gate", net.gate))
        inner = stages(net.features, "features.")
        units += list(reversed(inner)) if inner else [("features", net.features)]
        return units
    units = list(reversed(stages(net, "")))
    if not units:
        raise ValueError(f"{type(net).__name__} has no parameters to randomise")
    return units


@torch.no_grad()
def _randomize_(module: nn.Module) -> None:
    """Re-initialise every parameter of ``module`` (its own initialiser where it has one)."""
    if isinstance(module, ClassSpecificGate):
        module.weight.uniform_(0.0, 1.0)
        return
    for sub in module.modules():
        if hasattr(sub, "reset_parameters") and callable(sub.reset_parameters):
            sub.reset_parameters()
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            # reset_parameters sets γ = 1, β = 0: draw them instead so the unit really changes.
            if sub.affine:
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.normal_(0.0, 0.5)
    leftovers = [p for m in module.modules() if not hasattr(m, "reset_parameters")
                 for p in m.parameters(recurse=False)]  # fmt: skip
    for parameter in leftovers:
        parameter.normal_(0.0, 0.1)


def _maps(method: Any, images: Tensor, targets: Tensor) -> np.ndarray:
    out = method.attribute(images, target=targets)
    if isinstance(out, tuple):
        out = out[0]
    return out.detach().float().flatten(1).cpu().numpy()


def _spearman_rows(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-example Spearman ρ; examples where either map is constant are skipped (NaN)."""
    from scipy.stats import spearmanr

    values = np.full(before.shape[0], np.nan)
    for i in range(before.shape[0]):
        if np.ptp(before[i]) == 0 or np.ptp(after[i]) == 0:
            continue
        values[i] = spearmanr(before[i], after[i]).statistic
    return values, int(np.isnan(values).sum())


def default_methods(gate: Tensor | None = None, mode: str = "cam") -> dict[str, MethodFactory]:
    """``CSGAttribution`` and Captum ``LayerGradCam`` on ``net.gated_layer``, side by side.

    Args:
        gate: a fixed C×K gate for an STD model (e.g. ``gate_from_mi``); ``None`` uses the
            model's own (randomised with it when the cascade reaches ``gate``).
        mode: the ``CSGAttribution`` mode.
    """
    from captum.attr import LayerGradCam

    from .csg_attribution import CSGAttribution

    return {
        "CSGAttribution": lambda model: CSGAttribution.from_net(model, gate=gate, mode=mode),
        "LayerGradCam": lambda model: LayerGradCam(model, model.gated_layer),
    }


@dataclass
class SanityResult:
    """Rank correlation of each method's maps with the trained model's, per cascade step.

    Attributes:
        rows: one dict per (step, method): ``step`` (0 = nothing randomised), ``randomized``
            (the unit randomised at this step, cumulative), ``method``, ``spearman`` (mean over
            the examples), ``spearman_std``, ``constant`` (examples skipped because a map was
            constant).
        units: the cascade order.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(row["method"] for row in self.rows))

    def curve(self, method: str) -> list[float]:
        """Mean Spearman ρ per step for one method (step 0 first)."""
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; have {', '.join(self.methods)}")
        return [row["spearman"] for row in self.rows if row["method"] == method]

    def final(self, method: str) -> float:
        """Mean Spearman ρ after the whole model was randomised."""
        return self.curve(method)[-1]

    def unchanged(self, threshold: float = 0.5) -> list[str]:
        """Methods whose maps still correlate ≥ ``threshold`` with the trained model's after the
        full cascade (or were constant throughout): they fail the sanity check."""
        return [m for m in self.methods if not self.final(m) < threshold]

    def to_markdown(self) -> str:
        """A table: one row per step, one column per method (mean ± std of Spearman ρ)."""
        methods = self.methods
        lines = ["| step | randomised up to | " + " | ".join(methods) + " |",
                 "|---|---|" + "---|" * len(methods)]  # fmt: skip
        steps = sorted({row["step"] for row in self.rows})
        for step in steps:
            cells = []
            unit = ""
            for method in methods:
                row = next(r for r in self.rows if r["step"] == step and r["method"] == method)
                unit = row["randomized"]
                cell = f"{row['spearman']:.3f} ± {row['spearman_std']:.3f}"
                if row["constant"]:
                    cell += f" ({row['constant']} constant)"
                cells.append(cell)
            lines.append(f"| {step} | {unit} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def sanity_check(
    net: nn.Module,
    images: Tensor,
    target: Tensor | Sequence[int] | int | None = None,
    methods: Mapping[str, MethodFactory] | None = None,
    gate: Tensor | None = None,
    seed: int = 0,
    mode: str = "cam",
) -> SanityResult:
    """Cascading model-parameter randomisation (Adebayo et al., 2018) for several methods.

    The trained model is never modified: a deep copy is randomised unit by unit
    (:func:`cascade_units`, head first), cumulatively, with each unit's own initialiser
    (``reset_parameters``; BatchNorm affine parameters are drawn at random; the gate is drawn
    uniformly in [0, 1]). After each step every method is rebuilt on the copy and its maps for
    the *same* targets are compared with the trained model's maps by Spearman rank correlation,
    per example, at the method's own output resolution.

    Args:
        net: the trained model (eval mode is used).
        images: a batch (N, C, H, W) in [0, 1].
        target: the classes to explain, fixed for all steps; ``None`` = the trained model's
            predictions.
        methods: ``name → factory(model) -> attribution`` (anything with
            ``attribute(images, target=...)``); default :func:`default_methods` (``gate`` is
            passed on, for STD models).
        gate: a fixed gate for the default ``CSGAttribution`` of an STD model.
        seed: seeds the re-initialisation (the result is deterministic for a given seed).
        mode: the default ``CSGAttribution``'s mode.

    Returns:
        A :class:`SanityResult`.

    Example:
        >>> from csg_interp.models import SmallCNN
        >>> net = CSGNet.from_backbone(SmallCNN(3, 1, (4, 6, 8))).eval()
        >>> result = sanity_check(net, torch.rand(4, 1, 16, 16))
        >>> result.methods
        ['CSGAttribution', 'LayerGradCam']
    """
    check_images(images)
    methods = dict(methods) if methods is not None else default_methods(gate, mode)
    if not methods:
        raise ValueError("methods is empty; pass at least one name → factory(model)")
    with eval_mode(net):
        with torch.no_grad():
            logits = net(images)
        if target is None:
            targets = logits.argmax(dim=1)
        else:
            targets = torch.as_tensor(target, dtype=torch.long, device=logits.device)
            if targets.dim() == 0:
                targets = targets.expand(images.shape[0])
        reference = {
            name: _maps(factory(net), images, targets) for name, factory in methods.items()
        }
        units = cascade_units(net)
        result = SanityResult(units=[name for name, _ in units])
        for name in methods:
            result.rows.append({"step": 0, "randomized": "nothing", "method": name,
                                "spearman": 1.0, "spearman_std": 0.0, "constant": 0})  # fmt: skip
        randomized = copy.deepcopy(net).eval()
        modules = dict(randomized.named_modules())
        with torch.random.fork_rng(devices=[]):
            for step, (unit_name, _) in enumerate(units, start=1):
                torch.manual_seed(seed + step)
                _randomize_(modules[unit_name])
                for name, factory in methods.items():
                    values, constant = _spearman_rows(
                        reference[name], _maps(factory(randomized), images, targets)
                    )
                    finite = values[np.isfinite(values)]
                    result.rows.append({
                        "step": step, "randomized": unit_name, "method": name,
                        "spearman": float(finite.mean()) if finite.size else float("nan"),
                        "spearman_std": float(finite.std()) if finite.size else float("nan"),
                        "constant": constant,
                    })  # fmt: skip
    return result


# ============================================================================ deletion / insertion
@dataclass
class DeletionInsertion:
    """Deletion and insertion curves and AUCs (Petsiuk et al., 2018).

    Attributes:
        fractions: (S,) perturbed fraction of the positions at each point, 0 … 1.
        deletion: (N, S) target-class score as the highest-ranked positions are replaced by the
            baseline (lower AUC = more faithful).
        insertion: (N, S) score as they are restored onto the baseline (higher AUC = better).
        deletion_auc, insertion_auc: (N,) trapezoid areas under the curves.
    """

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor
    deletion_auc: Tensor
    insertion_auc: Tensor

    def summary(self) -> dict[str, float]:
        """Mean AUCs, named like torch-cam's ``DeletionInsertionMetric.summary()``."""
        return {
            "deletion_auc": float(self.deletion_auc.mean()),
            "insertion_auc": float(self.insertion_auc.mean()),
        }


@torch.no_grad()
def deletion_insertion(
    forward_func: Callable[[Tensor], Tensor],
    images: Tensor,
    maps: Tensor,
    target: Tensor | Sequence[int] | int,
    steps: int = 20,
    baseline: Tensor | float = 0.0,
    score: str = "softmax",
    batch_size: int = 64,
) -> DeletionInsertion:
    """Deletion / insertion curves of saliency ``maps`` on ``images``.

    Protocol (the same as torch-cam 0.5.0 ``DeletionInsertionMetric``, so results can be
    cross-checked): ``maps`` (N, 1, h, w) are resized to (H, W) bilinearly
    (``align_corners=False``); the H·W positions are ranked by value, highest first (stable sort);
    with P = H·W and ``step = ceil(P / steps)`` the curve has points at ``0, step, 2·step, …, P``
    positions perturbed. Deletion replaces the top positions (all channels) by ``baseline``;
    insertion starts from the baseline and restores them. The score is the softmax probability
    (``score="softmax"``) or the logit (``"logit"``) of the target class; AUC by the trapezoid
    rule over the perturbed fraction.

    Args:
        forward_func: the model, images → logits (N, C).
        images: (N, C, H, W) in [0, 1].
        maps: (N, 1, h, w) or (N, h, w) saliency maps.
        target: the class per example (int or N classes).
        steps: the number of perturbation intervals (torch-cam's default, 20).
        baseline: the value (or a tensor broadcastable to ``images``) that replaces pixels;
            0 = black.
        score: ``"softmax"`` or ``"logit"``.
        batch_size: perturbed images per forward pass.

    Returns:
        A :class:`DeletionInsertion`.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x = torch.rand(3, 1, 2, 2)
        >>> result = deletion_insertion(net, x, x, target=0, steps=4)
        >>> result.deletion.shape
        torch.Size([3, 5])
    """
    check_images(images)
    if steps < 1:
        raise ValueError(f"steps must be a positive number of intervals, got {steps}")
    if score not in ("softmax", "logit"):
        raise ValueError(f"score must be 'softmax' or 'logit', got {score!r}")
    if maps.dim() == 3:
        maps = maps.unsqueeze(1)
    if maps.dim() != 4 or maps.shape[1] != 1 or maps.shape[0] != images.shape[0]:
        raise ValueError(
            f"maps must be (N, 1, h, w) with N = {images.shape[0]}, got {tuple(maps.shape)}"
        )
    num, _, height, width = images.shape
    targets = torch.as_tensor(target, dtype=torch.long, device=images.device)
    if targets.dim() == 0:
        targets = targets.expand(num)
    if targets.shape != (num,):
        raise ValueError(f"need one target per image: {tuple(targets.shape)} for {num} images")
    base = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    base = torch.broadcast_to(base, images.shape)

    def scores(batch: Tensor, classes: Tensor) -> Tensor:
        outputs = []
        for start in range(0, batch.shape[0], batch_size):
            logits = forward_func(batch[start : start + batch_size])
            if score == "softmax":
                logits = logits.softmax(dim=1)
            outputs.append(logits.gather(1, classes[start : start + batch_size, None])[:, 0])
        return torch.cat(outputs)

    resized = F.interpolate(maps.float(), (height, width), mode="bilinear", align_corners=False)
    order = torch.argsort(resized.flatten(1), dim=1, descending=True, stable=True)
    ranks = torch.argsort(order, dim=1)  # rank of each position, 0 = most salient
    positions = height * width
    step = math.ceil(positions / steps)
    counts = torch.tensor([*range(0, positions, step), positions], device=images.device)
    fractions = counts.float() / positions
    points = counts.numel()
    deletion = torch.empty(num, points, device=images.device)
    insertion = torch.empty(num, points, device=images.device)
    flat, flat_base = images.flatten(2), base.flatten(2)  # (N, C, P)
    for i in range(num):  # one image at a time: 2·S perturbed copies, not N·2·S
        top = (ranks[i][None, :] < counts[:, None])[:, None, :]  # (S, 1, P)
        deleted = torch.where(top, flat_base[i][None], flat[i][None])
        inserted = torch.where(top, flat[i][None], flat_base[i][None])
        both = torch.cat([deleted, inserted]).view(2 * points, *images.shape[1:])
        values = scores(both, targets[i].repeat(2 * points))
        deletion[i], insertion[i] = values[:points], values[points:]
    return DeletionInsertion(
        fractions=fractions.cpu(),
        deletion=deletion.cpu(),
        insertion=insertion.cpu(),
        deletion_auc=torch.trapezoid(deletion, fractions, dim=1).cpu(),
        insertion_auc=torch.trapezoid(insertion, fractions, dim=1).cpu(),
    )
