"""L∞ adversarial attacks (FGSM, PGD) from ``captum.robust``, batched, with a success mask.

The attacks themselves are Captum's :class:`captum.robust.FGSM` (Goodfellow et al., 2015,
https://arxiv.org/abs/1412.6572) and :class:`captum.robust.PGD` (Madry et al., 2018,
https://arxiv.org/abs/1706.06083). This module adds what an evaluation needs around them:

* ε in **[0, 1] pixel units**: the model takes images in [0, 1] and normalises inside
  (``CSGNet.features.normalize``), so the attack clamps to the scalar bounds 0 and 1.
* a per-sample loss on **logits** (Captum's default loss is ``-log(output)``, which expects
  probabilities): cross-entropy, or the logit margin ``max_{j≠y} z_j − z_y`` (Carlini & Wagner,
  2017), which does not saturate on confident predictions.
* fixed, documented PGD settings: ``steps=10``, ``step_size=2.5·ε/steps``, a uniform random start
  in the ε-ball (Madry et al.), seeded for reproducibility.
* batching (``batch_size``), eval mode for the attack (restored afterwards), and an
  :class:`AttackResult` that says which attacks count: only images the model classified correctly
  before the attack, whose prediction then changed (untargeted) or became the target (targeted).

The attacks are **non-adaptive**: they maximise the classifier's loss and know nothing of any
detector that looks at the result.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> images, labels = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])
    >>> result = attack(model, images, labels, method="pgd", eps=0.1)
    >>> bool((result.adversarial - images).abs().max() <= 0.1 + 1e-6)
    True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csg_interp._utils import eval_mode
from csg_interp.errors import InvalidParameterError, check_pixel_values
from csg_interp.progress import progress_bar
from csg_interp.training.gate import check_labels
from csg_interp.training.network import check_images

__all__ = [
    "ATTACKS",
    "LOSSES",
    "AttackResult",
    "attack",
    "check_epsilon",
    "default_step_size",
    "margin_loss",
]

ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
LOSSES: tuple[str, ...] = ("ce", "margin")
AttackName = Literal["fgsm", "pgd"]
LossName = Literal["ce", "margin"]

#: PGD defaults (documented in docs/detection.md): 10 steps of 2.5·ε/10, random start.
DEFAULT_PGD_STEPS = 10
DEFAULT_STEP_FACTOR = 2.5


def check_epsilon(eps: float) -> float:
    """Validate an L∞ radius in [0, 1] pixel units.

    Raises:
        ValueError: if ``eps`` is not a number in [0, 1].
    """
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"`eps` must be a number in [0, 1] pixel units, got {eps!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        hint = f" (did you mean {value / 255:.4f}, i.e. {value:g}/255?)" if 1.0 < value <= 255 else ""
        raise InvalidParameterError(
            f"`eps` is an L∞ radius in [0, 1] pixel units (images are in [0, 1]), got {value:g}{hint}"
        )
    return value


def default_step_size(eps: float, steps: int) -> float:
    """PGD step size ``2.5·ε / steps`` (Madry et al.'s rule of thumb): the ball's border is
    reachable from any start, and the last steps can still move along it."""
    return DEFAULT_STEP_FACTOR * eps / max(int(steps), 1)


def margin_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample logit margin ``max_{j≠y} z_j − z_y`` (Carlini & Wagner, 2017).

    Larger means more wrong; positive means misclassified. Unlike cross-entropy, its gradient does
    not vanish on confidently classified inputs.

    Args:
        logits: (N, C).
        labels: (N,) long.

    Returns:
        (N,) tensor.

    Example:
        >>> margin_loss(torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([0]))
        tensor([-2.])
    """
    true_logit = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    return others.amax(dim=1) - true_logit


def _loss_function(name: str, targeted: bool):
    """A per-sample loss ``f(logits, target) -> (N,)`` that the attack ascends (untargeted) or
    that Captum descends (targeted: it steps along ``-sign(grad)``)."""
    if name == "ce":
        return lambda logits, target: F.cross_entropy(logits, target, reduction="none")
    if name == "margin":
        # Untargeted: ascend max_{j≠y} z_j − z_y. Targeted (Captum descends the loss): descend
        # max_{j≠t} z_j − z_t, i.e. push the target logit above all others.
        return margin_loss
    raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")


@dataclass
class AttackResult:
    """What an attack produced, per image.

    Attributes:
        adversarial: the attacked images (N, C, H, W) in [0, 1]; for an image that was already
            misclassified this is still the attack's output, but it does not count.
        labels: the true labels (N,).
        targets: the target classes (N,) of a targeted attack, else ``None``.
        clean_pred: the model's prediction on the clean images (N,).
        adv_pred: the prediction on the attacked images (N,).
        eps: the L∞ radius in pixel units.
        method: ``"fgsm"`` or ``"pgd"``.
    """

    adversarial: Tensor
    labels: Tensor
    targets: Tensor | None
    clean_pred: Tensor
    adv_pred: Tensor
    eps: float
    method: str

    @property
    def correct(self) -> Tensor:
        """Bool (N,): the clean image was classified correctly (only these are attacked for real)."""
        return self.clean_pred == self.labels

    @property
    def success(self) -> Tensor:
        """Bool (N,): a counted success -- correct before, and afterwards wrong (untargeted) or the
        target class (targeted)."""
        if self.targets is not None:
            return self.correct & (self.adv_pred == self.targets)
        return self.correct & (self.adv_pred != self.labels)

    @property
    def success_rate(self) -> float:
        """Successes over correctly classified images (0.0 when none is correct)."""
        correct = int(self.correct.sum())
        return float(self.success.sum()) / correct if correct else 0.0


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _random_targets(labels: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """A uniformly drawn class different from each label."""
    if num_classes < 2:
        raise ValueError("a targeted attack needs at least two classes")
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.cpu() + shift) % num_classes


@torch.no_grad()
def _predict(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(batch_size)])


def attack(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    method: str = "pgd",
    eps: float = 0.1,
    *,
    targeted: bool = False,
    targets: Tensor | None = None,
    steps: int = DEFAULT_PGD_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    progress: bool | None = None,
) -> AttackResult:
    """Attack a batch of images with Captum's FGSM or PGD under an L∞ bound in pixel units.

    Args:
        model: maps images in [0, 1] to logits (N, C) -- e.g. a :class:`~csg_interp.training.CSGNet`
            (its STD path). It is run in eval mode during the attack and restored afterwards.
        images: float (N, C, H, W) in [0, 1].
        labels: true labels (N,).
        method: ``"pgd"`` (default) or ``"fgsm"`` (one step of size ε).
        eps: L∞ radius in [0, 1] pixel units; 0 returns the images unchanged.
        targeted: attack towards ``targets`` instead of away from ``labels``.
        targets: target classes (N,) for a targeted attack; ``None`` draws, per image, a uniformly
            random class other than its label (seeded by ``seed``).
        steps: PGD iterations (default 10; ignored by FGSM).
        step_size: PGD step in pixel units; default ``2.5·ε/steps``.
        random_start: PGD starts from a uniform point in the ε-ball (default ``True``).
        loss: ``"ce"`` (cross-entropy, default) or ``"margin"`` (logit margin).
        batch_size: images per attack batch.
        seed: seeds the random start and the random targets.
        progress: show a tqdm bar over batches (``None``: the switch of
            :func:`csg_interp.progress.set_progress`; shown after a second).

    Returns:
        An :class:`AttackResult`.

    Raises:
        ValueError: for ε outside [0, 1], an unknown method or loss, or bad images/labels.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> result = attack(model, torch.rand(5, 1, 2, 2), torch.zeros(5, dtype=torch.long),
        ...                 method="fgsm", eps=0.0)
        >>> int(result.success.sum())
        0
    """
    from captum.robust import FGSM, PGD

    eps = check_epsilon(eps)
    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}; use one of {', '.join(ATTACKS)}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_images(images)
    check_pixel_values(images, "images", warn_range=False)  # NaN/inf; the range is an error below
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ValueError(
            "images must lie in [0, 1] (pixel units; the model normalises inside); got values in "
            f"[{float(images.min()):.3g}, {float(images.max()):.3g}]"
        )
    step = default_step_size(eps, steps) if step_size is None else float(step_size)
    if step < 0:
        raise ValueError(f"step_size must be non-negative, got {step}")

    device = _model_device(model)
    generator = torch.Generator().manual_seed(seed)
    with eval_mode(model):
        with torch.no_grad():
            num_classes = int(model(images[:1].to(device)).shape[1])
        labels = check_labels(labels, num_classes, images.shape[0]).cpu()
        if targeted and targets is None:
            targets = _random_targets(labels, num_classes, generator)
        if targets is not None:
            if not targeted:
                raise ValueError("targets were given for an untargeted attack; pass targeted=True")
            targets = check_labels(targets, num_classes, images.shape[0]).cpu()
        aim = targets if targeted else labels
        loss_fn = _loss_function(loss, targeted)

        if method == "fgsm":
            attacker = FGSM(model, loss_func=loss_fn, lower_bound=0.0, upper_bound=1.0)
        else:
            attacker = PGD(model, loss_func=loss_fn, lower_bound=0.0, upper_bound=1.0)

        chunks = progress_bar(
            range(0, images.shape[0], batch_size), desc=f"{method} ε={eps:g}", unit="batch",
            enabled=progress,
        )  # fmt: skip
        outputs = []
        # The random start uses the global RNG (Captum's torch.rand_like); fork it so the caller's
        # RNG state is untouched and the result depends on ``seed`` only.
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices), warnings.catch_warnings():
            # Captum sets requires_grad on the inputs itself and warns each time; that is expected.
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require")
            torch.manual_seed(seed)
            for start in chunks:
                batch = images[start : start + batch_size].to(device)
                batch_aim = aim[start : start + batch_size].to(device)
                if eps == 0.0:
                    adversarial = batch.clone()
                elif method == "fgsm":
                    adversarial = attacker.perturb(batch, eps, batch_aim, targeted=targeted)
                else:
                    adversarial = attacker.perturb(
                        batch, radius=eps, step_size=step, step_num=steps, target=batch_aim,
                        targeted=targeted, random_start=random_start,
                    )
                outputs.append(adversarial.detach())
        adversarial = torch.cat(outputs)
        clean_pred = _predict(model, images.to(device), batch_size).cpu()
        adv_pred = _predict(model, adversarial, batch_size).cpu()
    return AttackResult(
        adversarial=adversarial.cpu(),
        labels=labels,
        targets=targets if targeted else None,
        clean_pred=clean_pred,
        adv_pred=adv_pred,
        eps=eps,
        method=method,
    )
