"""Training a CNN with a class-specific gate: the gate, the gated network, losses, the trainer."""

from .gate import (
    PROJECTIONS,
    ClassSpecificGate,
    check_labels,
    gate_assignment,
    l1_density,
    project_gate_,
    sparsity_hinge,
)
from .network import CSGNet, GAPLinearHead, Normalize, check_images

__all__ = [
    "PROJECTIONS",
    "ClassSpecificGate",
    "CSGNet",
    "GAPLinearHead",
    "Normalize",
    "check_images",
    "check_labels",
    "gate_assignment",
    "l1_density",
    "project_gate_",
    "sparsity_hinge",
]
