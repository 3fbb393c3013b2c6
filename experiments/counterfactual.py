"""Extension (not in the paper): the counterfactual-gate loss.

Why: in a CSG step the head sees ``G[y] ⊙ f(x)``, the features masked by the row of the *true*
class. Once the gate is sparse, which filters are open reveals ``y`` by itself, so the head can
learn "the group of class c is open → predict c" whatever the image shows (at full accuracy the
CSG path reaches 0.998–1.0 training accuracy, see docs/metrics.md). The CSG-path cross-entropy
is then satisfied without making filters fire only on their class -- the property MIS measures.

The counterfactual term closes that shortcut. For each sample it draws a wrong class
``c ≠ y`` uniformly, masks the same features with that class's row and asks the head **not** to
answer ``c``:

    cf(x, y) = −log(1 − softmax(head(G[c] ⊙ f(x)))_c),   c ~ U({0..C−1} \\ {y})

The head cannot satisfy both this and the CSG cross-entropy by reading the mask alone (the same
mask pattern must give ``c`` on images of class ``c`` and not on others), so the filters of
group ``c`` must stay quiet on images of other classes. The gate is detached in this term (it
trains the backbone's gated stage and the head; the gate keeps the paper's CE + hinge updates
and projection). The wrong classes come from a generator seeded with the run's seed, one draw
per step.

Used by experiments/full_accuracy.py (variant ``csg_cf``) through :class:`CounterfactualTrainer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from extra_term import ExtraTermTrainer  # experiments/extra_term.py

__all__ = ["counterfactual_gate_loss", "wrong_classes", "CounterfactualTrainer"]


def wrong_classes(labels: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """One class per sample drawn uniformly from the classes other than its label.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> labels = torch.tensor([0, 1, 2, 0])
        >>> bool((wrong_classes(labels, 3, g) != labels).all())
        True
    """
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels + shift.to(labels.device)) % num_classes


def counterfactual_gate_loss(masked_logits: Tensor, wrong: Tensor) -> Tensor:
    """Mean of ``−log(1 − p_c)``: the head must not answer the class whose row masked the input.

    Args:
        masked_logits: (N, C) logits of ``head(G[c] ⊙ f(x))``.
        wrong: (N,) the classes ``c`` whose rows were used.

    Returns:
        A scalar, computed as ``logsumexp(all) − logsumexp(all but c)`` (stable).

    Example:
        >>> logits = torch.tensor([[0.0, 0.0]])  # p_c = 1/2 → ln 2
        >>> round(float(counterfactual_gate_loss(logits, torch.tensor([1]))), 4)
        0.6931
    """
    chosen = torch.nn.functional.one_hot(wrong, masked_logits.shape[1]).bool()
    others = masked_logits.masked_fill(chosen, float("-inf")).logsumexp(dim=1)
    return (masked_logits.logsumexp(dim=1) - others).mean()


class CounterfactualTrainer(ExtraTermTrainer):
    """Trainer whose CSG/joint steps add ``cf_weight · counterfactual_gate_loss``.

    Args:
        config: a :class:`~csg_interp.training.config.TrainConfig`.
        cf_weight: the term's weight (0 gives the plain trainer).
        **kwargs: passed to the trainer.
    """

    term_name = "counterfactual"

    def __init__(self, config: Any, cf_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(config, weight=cf_weight, **kwargs)
        self.generator = torch.Generator().manual_seed(int(self.config.seed) + 7919)

    def extra_term(self, activations: Tensor, labels: Tensor) -> Tensor:
        gate = self.net.gate.weight.detach()
        wrong = wrong_classes(labels, gate.shape[0], self.generator)
        masked = activations * gate[wrong][:, :, None, None].to(activations.dtype)
        return counterfactual_gate_loss(self.net.head(masked).float(), wrong)


#: The trainer class experiments/full_accuracy.py uses for this extension.
TRAINER = CounterfactualTrainer
