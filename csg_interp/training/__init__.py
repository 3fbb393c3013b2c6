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
from .augment import augment_batch
from .checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    save_checkpoint,
)
from .config import PRESETS, SCHEDULES, TrainConfig
from .losses import (
    LossTerms,
    csg_objective,
    joint_objective,
    owner_separation_loss,
    std_objective,
)
from .pretrained import WeightsReport, attach_gate, fit_gate_only, freeze_batchnorm, load_pretrained
from .runs import Run, build_net, export_network, load_network, load_run, scope_parameters
from .schedule import EpochSchedule
from .trainer import Trainer, TrainingDivergedError, evaluate_accuracy, fit, load_bundle

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "EpochSchedule",
    "LossTerms",
    "PRESETS",
    "Run",
    "WeightsReport",
    "attach_gate",
    "fit_gate_only",
    "freeze_batchnorm",
    "load_pretrained",
    "SCHEDULES",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "augment_batch",
    "build_net",
    "csg_objective",
    "evaluate_accuracy",
    "export_network",
    "fit",
    "joint_objective",
    "owner_separation_loss",
    "load_bundle",
    "load_checkpoint",
    "load_network",
    "load_run",
    "save_checkpoint",
    "scope_parameters",
    "std_objective",
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
