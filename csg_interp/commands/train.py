"""Train a CSG network (or its STD twin with --no-gate) into a run directory.

The run directory receives config.json, manifest.json, metrics.jsonl (one row per epoch),
last.pt and best.pt. Options marked "preset" default to the value of --preset: `scratch`
(training from scratch, the default) or `reference` (the reference code verbatim, for
fine-tuning from --weights). See docs/training.md.
"""

from __future__ import annotations

import argparse

from .train_options import PresetDefault, key_value, stages

HELP = "train a CSG network or its STD twin (--no-gate) into a run directory"


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
    data.add_argument("--model-option", dest="model_options", type=key_value, action="append",
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
    opt.add_argument("--owner-separation", type=float, default=0.0, metavar="W",
                     help="weight of the owner-separation term on every CSG-path step (an "
                     "extension, not in the paper; 0 = off; docs/training.md)")
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
    opt.add_argument("--std-stages", type=stages, default=P("std_stages"),
                     help="what the STD path trains: 'all' or the last N stages + head")
    opt.add_argument("--csg-stages", type=stages, default=P("csg_stages"),
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
    scale.add_argument("--data-option", dest="data_options", type=key_value, action="append",
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


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows.train import train_run

    from .train_options import config_from_args, resume_changes

    result = train_run(
        config_from_args(args), resume=args.resume, changes=resume_changes(args),
        threads=args.threads, progress=not args.no_progress,
    )  # fmt: skip
    if result.primary:  # under torchrun, rank 0 reports the run
        print(result.summary())
    return 0
