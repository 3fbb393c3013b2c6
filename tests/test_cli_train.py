"""`csg-interp train` / `export` end to end on digits, --help, and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from csg_interp.cli import build_parser, main
from csg_interp.commands import train as train_command
from csg_interp.commands import train_options
from csg_interp.commands.run_args import add_run_arguments
from csg_interp.training import TrainConfig, load_network, load_run
from csg_interp.training.config import _REFERENCE, _SCRATCH

FAST = ["--dataset", "digits", "--model", "smallcnn", "--batch-size", "128", "--threads", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # --threads 1 changes the process-wide setting


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train_command.add_arguments(parser)
    return parser


def test_help_shows_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in _train_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.option_strings[-1] in text
    assert text.count("(default:") >= len(_train_parser()._actions) - 2  # all but -h and --out
    assert "(default: preset: scratch 0.05, reference 0.001)" in text  # --gate-lr


def test_help_preset_values_are_the_presets():
    for name, (scratch, reference) in train_options.PRESET_HELP.items():
        for shown, preset in ((scratch, _SCRATCH), (reference, _REFERENCE)):
            value = preset[name]
            if value is None:  # the scratch warm-up depends on the epochs
                assert "epochs/6" in shown
            elif isinstance(value, list):
                assert shown == " ".join(str(v) for v in value)
            else:
                assert shown == str(value), name


def test_cli_defaults_are_the_config_defaults():
    args = _train_parser().parse_args(["--out", "x"])
    config = train_options.config_from_args(args)
    assert dataclasses.asdict(config) == dataclasses.asdict(TrainConfig(out="x"))


def test_train_then_export_end_to_end(tmp_path, capsys):
    out = tmp_path / "csg"
    assert main(["train", *FAST, "--epochs", "3", "--gate-lr", "0.05", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CSG smallcnn on digits: 3 epochs, test accuracy" in printed and str(out) in printed
    run = load_run(out)
    assert run.config.gate_lr == 0.05 and run.config.batch_size == 128
    assert run.manifest["result"]["test_acc"] == pytest.approx(float(printed.split("test accuracy ")[1][:6]), abs=1e-4)

    model = tmp_path / "model.pt"
    result = subprocess.run(
        [sys.executable, "-m", "csg_interp", "export", str(out), "--out", str(model), "--checkpoint", "best"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "exported the plain network" in result.stdout
    exported = torch.load(model, weights_only=True)
    assert not any("gate" in key for key in exported["state_dict"])
    plain = load_network(model)
    best = load_run(out, checkpoint="best")
    images = best.load_data().test.tensors(torch.arange(16))[0]
    assert torch.allclose(plain(images), best.net(images), atol=1e-6)


def test_no_gate_trains_the_std_twin(tmp_path, capsys):
    assert main(["train", *FAST, "--epochs", "1", "--no-gate", "--out", str(tmp_path / "std")]) == 0
    assert capsys.readouterr().out.startswith("STD smallcnn on digits: 1 epochs")
    run = load_run(tmp_path / "std")
    assert run.net.gate is None and not run.config.gate


def test_expected_failures_print_one_line_and_return_1(tmp_path, capsys):
    code = main(["train", *FAST, "--preset", "reference", "--epochs", "5", "--out", str(tmp_path / "r")])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("csg-interp train: error: this schedule has no CSG epoch") and "--allow-no-csg" in error
    assert error.count("\n") == 1
    assert not (tmp_path / "r").exists()

    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "m.pt")]) == 1
    assert "run directory" in capsys.readouterr().err

    run_dir = tmp_path / "broken"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"dataset": "digits", "model": "smallcnn"}))
    (run_dir / "last.pt").write_bytes(b"garbage")
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.pt")]) == 1
    assert "corrupt or truncated" in capsys.readouterr().err

    # an option value the config rejects is a usage error (2), named by its flag
    assert main(["train", *FAST, "--epochs", "1", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "error: --lr must be a positive finite number" in capsys.readouterr().err


def test_add_run_arguments_defaults_to_the_last_checkpoint():
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    assert parser.parse_args(["runs/a"]).checkpoint == "last"
    assert parser.parse_args(["runs/a", "--checkpoint", "best"]).checkpoint == "best"
    with pytest.raises(SystemExit):
        parser.parse_args(["runs/a", "--checkpoint", "epoch3"])
    export = build_parser().parse_args(["export", "runs/a", "--out", "m.pt"])
    assert (export.run_dir, export.checkpoint) == ("runs/a", "last")
