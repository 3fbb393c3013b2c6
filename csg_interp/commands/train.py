"""Train a CSG network (or its STD twin with --no-gate) into a run directory.

The run directory receives config.json, manifest.json, metrics.jsonl (one row per epoch),
last.pt and best.pt. Options marked "preset" default to the value of --preset: `scratch`
(training from scratch, the default) or `reference` (the reference code verbatim, for
fine-tuning from --weights). See docs/training.md.
"""

from __future__ import annotations

import argparse

HELP = "train a CSG network or its STD twin (--no-gate) into a run directory"

#: Preset values shown in --help (tests/test_cli_train.py checks them against the presets).
PRESET_HELP: dict[str, tuple[str, str]] = {
    "epochs": ("12", "151"),
    "batch_size": ("128", "32"),
    "lr": ("0.2", "1e-05"),
    "csg_lr": ("0.2", "0.001"),
    "gate_lr": ("0.05", "0.001"),
    "lam": ("0.01", "0.001"),
    "tau": ("0.1", "0.2"),
    "warmup": ("round(epochs/6), 0 for joint", "10"),
    "period": ("3", "3"),
    "csg_from": ("2", "2"),
    "align": ("end", "start"),
    "milestones": ("0.4 0.6 0.8", "0.4 0.6 0.8"),
    "std_stages": ("all", "2"),
    "csg_stages": ("1", "1"),
    "gate_decay": ("False", "True"),
    "optimizer": ("sgd", "adam"),
    "momentum": ("0.9", "0.9"),
    "nesterov": ("True", "False"),
    "weight_decay": ("0.0005", "0.0"),
    "lr_schedule": ("onecycle", "multistep"),
    "lr_warmup": ("0.25", "0.0"),
    "label_smoothing": ("0.0", "0.0"),
}


class PresetDefault:
    """The default of an option that comes from --preset; ``--help`` prints both values."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        scratch, reference = PRESET_HELP[self.name]
        return f"preset: scratch {scratch}, reference {reference}"

    __repr__ = __str__


def _stages(value: str) -> int | str:
    if value == "all":
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive integer, got {value!r}")
    return number


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value); the value is read as JSON when it parses (``224``, ``true``)."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. image_size=224), got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    P = PresetDefault
    data = parser.add_argument_group("data and model")
    data.add_argument("--dataset", default="fashion-mnist", help="digits, fashion-mnist, ...")
    data.add_argument("--data-root", default=None, help="folder with the data set's files")
    data.add_argument("--data-seed", type=int, default=0, help="split seed (keep it across seeds)")
    data.add_argument("--train-subset", type=int, default=None, help="train on this many images")
    data.add_argument("--val-size", type=int, default=None, help="validation images (None: the loader's)")
    data.add_argument(
        "--augment", default=None, choices=["none", "flip", "shift", "flip_shift"],
        help="training augmentation (None: the data set's, flip_shift for Fashion-MNIST)",
    )
    data.add_argument("--model", default="resnet8", help="resnet8/14/20, smallcnn, resnet18, ...")
    data.add_argument("--widths", type=int, nargs="+", default=None, help="stage widths of small models")
    data.add_argument("--weights", default=None,
                      help="local backbone state dict to fine-tune from (a timm checkpoint for timm:<name>)")
    data.add_argument("--model-option", dest="model_options", type=_key_value, action="append",
                      metavar="KEY=VALUE", default=None,
                      help="a keyword of a timm model (--model timm:<name>), repeatable, e.g. "
                      "img_size=28 patch_size=4 global_pool=avg class_token=false fc_norm=false")

    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, help="the run directory, e.g. runs/NAME")
    run.add_argument("--epochs", type=int, default=P("epochs"), help="number of epochs")
    run.add_argument(
        "--preset", default="scratch", choices=["scratch", "reference"],
        help="scratch: training from scratch; reference: the reference code verbatim (fine-tuning)",
    )
    run.add_argument(
        "--schedule", default="alternate", choices=["alternate", "joint"],
        help="alternate: whole STD and CSG epochs (reference code); joint: the paper's summed "
        "objective every step (a variant)",
    )
    run.add_argument("--no-gate", action="store_true", help="train the STD twin (no gate)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    run.add_argument("--seed", type=int, default=0, help="seed (runs are deterministic on CPU)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out exactly, with its own config.json (only "
                     "--device, --data-root, --workers, --allow-no-csg, --threads may be given "
                     "beside it)")
    run.add_argument(
        "--allow-no-csg", action="store_true", help="accept a gated run whose schedule has no CSG epoch"
    )
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (None: torch's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=P("batch_size"), help="images per step")
    opt.add_argument("--optimizer", default=P("optimizer"), choices=["sgd", "adam", "adamw"],
                     help="optimiser of the backbone and head (the gate always uses Adam)")
    opt.add_argument("--momentum", type=float, default=P("momentum"),
                     help="SGD momentum / Adam β1 (onecycle cycles it over ± 0.05)")
    opt.add_argument("--nesterov", default=P("nesterov"), action=argparse.BooleanOptionalAction,
                     help="Nesterov momentum (sgd)")
    opt.add_argument("--weight-decay", type=float, default=P("weight_decay"),
                     help="weight decay of conv/linear weights (not BatchNorm, biases or the gate)")
    opt.add_argument("--lr-schedule", default=P("lr_schedule"),
                     choices=["multistep", "onecycle", "cosine"],
                     help="learning-rate schedule, over each optimiser's own steps")
    opt.add_argument("--lr-warmup", type=float, default=P("lr_warmup"),
                     help="fraction of each optimiser's steps warming the lr up (onecycle, cosine)")
    opt.add_argument("--label-smoothing", type=float, default=P("label_smoothing"),
                     help="label smoothing of every cross-entropy, in [0, 1)")
    opt.add_argument("--lr", type=float, default=P("lr"),
                     help="STD-path learning rate (the peak for onecycle/cosine)")
    opt.add_argument("--csg-lr", type=float, default=P("csg_lr"),
                     help="CSG-path learning rate of the backbone/head parameters")
    opt.add_argument("--gate-lr", type=float, default=P("gate_lr"), help="gate learning rate")
    opt.add_argument("--lam", type=float, default=P("lam"), help="λ, weight of the sparsity hinge")
    opt.add_argument("--csg-weight", type=float, default=1.0,
                     help="λ1, weight of the CSG cross-entropy (joint schedule)")
    opt.add_argument("--tau", type=float, default=P("tau"), help="τ, the hinge's L1-density bound")
    opt.add_argument("--warmup", type=int, default=P("warmup"), help="STD-only epochs at the start")
    opt.add_argument("--period", type=int, default=P("period"), help="alternation period (epochs)")
    opt.add_argument("--csg-from", type=int, default=P("csg_from"),
                     help="epochs whose phase in the period is ≥ this are CSG epochs")
    opt.add_argument("--align", default=P("align"), choices=["start", "end"],
                     help="phases counted from epoch 0 (start) or so that the last epoch is CSG (end)")
    opt.add_argument("--milestones", type=float, nargs="+", default=P("milestones"),
                     help="multistep: lr × gamma at these fractions of (epochs − 1), in each "
                     "path's own epochs")
    opt.add_argument("--gamma", type=float, default=0.1, help="learning-rate decay factor")
    opt.add_argument("--std-stages", type=_stages, default=P("std_stages"),
                     help="what the STD path trains: 'all' or the last N stages + head")
    opt.add_argument("--csg-stages", type=_stages, default=P("csg_stages"),
                     help="what the CSG path trains besides the gate: 'all' or the last N stages + head")
    opt.add_argument("--gate-decay", default=P("gate_decay"), action=argparse.BooleanOptionalAction,
                     help="the gate's learning rate follows the milestones")
    opt.add_argument("--projection", default="max", choices=["max", "clip"],
                     help="gate projection after every CSG step")
    opt.add_argument("--gate-init", type=float, default=0.5, help="initial gate value")

    scale = parser.add_argument_group(
        "scale and speed (docs/training-at-scale.md; multi-process: torchrun --nproc_per_node=N "
        "-m csg_interp train ...)"
    )
    scale.add_argument("--data-option", dest="data_options", type=_key_value, action="append",
                       metavar="KEY=VALUE", default=None,
                       help="an option of the data set's loader, repeatable (folder: image_size=224, "
                       "skip_corrupt=true, stats=imagenet, channels=1; cifar10: download=true)")
    scale.add_argument("--freeze-bn", action="store_true",
                       help="FrozenBatchNorm2d in the stages no path trains (needs numeric "
                       "--std-stages/--csg-stages, e.g. --preset reference)")
    scale.add_argument("--gate-only", action="store_true",
                       help="train only the gate of the trained network --weights PATH (every "
                       "epoch CSG; weights and BatchNorm statistics fixed)")
    scale.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                       help="mixed precision (fp16 on CUDA only, with gradient scaling)")
    scale.add_argument("--channels-last", default=True, action=argparse.BooleanOptionalAction,
                       help="NHWC memory format (faster convolutions on CPU and GPU)")
    scale.add_argument("--workers", type=int, default=0,
                       help="processes gathering each batch (pinned memory on CUDA); same results")


_CONFIG_FIELDS = (
    "dataset", "data_root", "data_seed", "train_subset", "val_size", "augment", "model", "widths",
    "weights", "out", "epochs", "preset", "schedule", "device", "seed", "allow_no_csg",
    "batch_size", "lr", "csg_lr", "gate_lr", "lam", "csg_weight", "tau", "warmup", "period",
    "csg_from", "align", "milestones", "gamma", "std_stages", "csg_stages", "gate_decay",
    "projection", "gate_init", "data_options", "freeze_bn", "amp", "channels_last", "workers",
    "gate_only", "model_options", "optimizer", "momentum", "nesterov", "weight_decay", "lr_schedule", "lr_warmup",
    "label_smoothing",
)  # fmt: skip


def config_from_args(args: argparse.Namespace):
    """The :class:`~csg_interp.training.TrainConfig` the parsed options describe."""
    from csg_interp.training import TrainConfig

    values = {name: getattr(args, name) for name in _CONFIG_FIELDS}
    values = {k: (None if isinstance(v, PresetDefault) else v) for k, v in values.items()}
    if values["data_options"] is not None:  # [(key, value), ...] from repeated --data-option
        values["data_options"] = dict(values["data_options"])
    if values["model_options"] is not None:  # [(key, value), ...] from repeated --model-option
        values["model_options"] = dict(values["model_options"])
    return TrainConfig(**values, gate=not args.no_gate)


#: Options that do not describe the run, accepted beside --resume.
_RUN_ONLY = frozenset({"out", "resume", "threads", "no_progress", "verbose"})


def _resume_config(args: argparse.Namespace):
    """--resume on a run with config.json: its own config, only the mutable fields changed."""
    from pathlib import Path

    from csg_interp.training.resume import resume_config

    if not (Path(args.out) / "config.json").is_file():
        return None  # nothing recorded yet: the options on the command line define the run
    explicit = getattr(args, "_explicit", set()) - _RUN_ONLY
    changes = {name: getattr(args, name) for name in sorted(explicit)}
    if changes.get("data_options") is not None:
        changes["data_options"] = dict(changes["data_options"])
    if changes.get("model_options") is not None:
        changes["model_options"] = dict(changes["model_options"])
    return resume_config(args.out, **changes)


def run(args: argparse.Namespace) -> int:
    import torch

    from csg_interp.training import fit

    from csg_interp.errors import InvalidParameterError, check_threads

    if args.threads is not None:
        torch.set_num_threads(check_threads(args.threads))
    config = _resume_config(args) if args.resume else None
    if config is None:
        try:
            config = config_from_args(args).resolved()
        except ValueError as error:  # an option the config rejects: a usage error (exit 2)
            raise InvalidParameterError(str(error)) from error
    from csg_interp.training.distributed import fit_distributed, is_torchrun

    if is_torchrun():  # torchrun with N > 1 processes: DDP; rank 0 writes the run and prints
        import os

        trained = fit_distributed(config, resume=args.resume, progress=not args.no_progress)
        if int(os.environ["RANK"]) != 0:
            return 0
    else:
        trained = fit(config, resume=args.resume, progress=not args.no_progress)
    result = trained.manifest.get("result") or {}
    kind = "CSG" if trained.has_gate else "STD"
    density = result.get("gate_density")
    print(
        f"{kind} {config.model} on {config.dataset}: {trained.epochs_done} epochs, "
        f"test accuracy {result.get('test_acc', float('nan')):.4f}"
        + (f", gate L1-density {density:.3f}" if density is not None else "")
        + f"; run directory {trained.run_dir}"
    )
    return 0
