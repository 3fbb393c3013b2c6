"""Bad inputs, as a new user types them: each gets the right exit code (or exception type), one
line that names the problem (and only flags the command has), no traceback, and leaves every file
that was already there byte-identical.

The CLI runs in-process (``main([...])``); the work is tiny (digits, smallcnn) and most cases
fail before any computation.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csg_interp import errors
from csg_interp.cli import build_parser, main

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w])")


# ------------------------------------------------------------------ the world the cases break
@pytest.fixture(scope="module")
def world(tiny_digits_pair, tmp_path_factory) -> Path:
    """A folder of runs and files in various bad states (copies: the session pair stays clean)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    shutil.copytree(tiny_digits_pair["csg"], root / "csg")
    shutil.copytree(tiny_digits_pair["std"], root / "std")
    shutil.copytree(tiny_digits_pair["csg"], root / "no_best")
    (root / "no_best" / "best.pt").unlink()
    shutil.copytree(tiny_digits_pair["csg"], root / "foreign")
    shutil.copy(tiny_digits_pair["std"] / "last.pt", root / "foreign" / "last.pt")  # no gate
    shutil.copytree(tiny_digits_pair["std"], root / "other_data")
    config = json.loads((root / "other_data" / "config.json").read_text())
    config["dataset"] = "fashion-mnist"
    (root / "other_data" / "config.json").write_text(json.dumps(config))
    (root / "a_file.txt").write_text("not a run\n")
    (root / "empty").mkdir()
    (root / "export_dir").mkdir()
    rng = np.random.default_rng(0)
    for tree, classes in (("one_class", ["cat"]), ("corrupt", ["cat", "dog"])):
        for name in classes:
            folder = root / tree / name
            folder.mkdir(parents=True)
            for index in range(4):
                pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    (root / "corrupt" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _flags(verb: str) -> set[str]:
    parser = build_parser().verb_parsers[verb]
    return set(parser._option_string_actions)


def _unknown_flags(message: str, verb: str) -> set[str]:
    """Flags in ``message`` that ``verb`` lacks; a quoted ``csg-interp OTHER ...`` command (up to
    the next ';') is checked against OTHER."""
    unknown = set()
    pieces = re.split(r"(csg-interp [a-z]+ [^;]*)", message)
    for piece in pieces:
        quoted = re.match(r"csg-interp ([a-z]+) ", piece)
        owner = quoted.group(1) if quoted and quoted.group(1) in build_parser().verb_parsers else verb
        unknown |= set(FLAG.findall(piece)) - _flags(owner)
    return unknown


# ------------------------------------------------------------------------------- CLI cases
# (argv with {w} for the world folder, exit code, a regex the error line must match)
CLI_CASES = [
    # flags that do not exist: the verb's usage, a suggestion
    (["train", "--out", "{w}/n1", "--download"], 2, r"unrecognized arguments: --download"),
    (["evaluate", "{w}/csg", "--jobz", "2"], 2, r"--jobz: did you mean --jobs\?"),
    (["detect", "{w}/csg", "--epsilon", "0.1"], 2, r"did you mean --eps\?"),
    (["bogus-command"], 2, r"invalid choice: 'bogus-command'"),
    # train: data, output, options
    (["train", "--dataset", "fashion-mnist", "--data-root", "{w}/empty", "--out", "{w}/n2"], 1,
     r"Fashion-MNIST not found .*--data-root DIR.*--data-option download=true"),
    (["train", "--dataset", "folder", "--data-root", "{w}/corrupt", "--out", "{w}/n3",
      "--data-option", "image_size=12"], 1,
     r"1 image file\(s\) cannot be decoded: .*broken\.jpg.*--data-option skip_corrupt=true"),
    (["train", "--dataset", "folder", "--data-root", "{w}/one_class", "--out", "{w}/n4",
      "--data-option", "image_size=12"], 2, r"one class folder \(cat\); .*at least two classes"),
    (["train", "--dataset", "digits", "--out", "{w}/a_file.txt"], 1,
     r"--out .*a_file\.txt is a file, not a run directory"),
    (["train", "--dataset", "digits", "--model", "smallcnn", "--out", "{w}/csg"], 1,
     r"already holds a run; pass --resume to continue it, or choose another --out"),
    (["train", "--dataset", "digits", "--out", "{w}/n5", "--threads", "0"], 2,
     r"--threads must be an integer from 1 to \d+ .*got 0"),
    (["train", "--dataset", "digits", "--out", "{w}/n6", "--threads", "-3"], 2,
     r"--threads must be an integer"),
    (["train", "--dataset", "digits", "--out", "{w}/n7", "--epochs", "0"], 2,
     r"--epochs must be a positive integer, got 0"),
    (["train", "--dataset", "digits", "--out", "{w}/n8", "--batch-size", "1"], 2,
     r"--batch-size must be an integer ≥ 2"),
    (["train", "--dataset", "digits", "--out", "{w}/n9", "--workers", "-1"], 2,
     r"--workers must be an integer ≥ 0"),
    (["train", "--dataset", "digits", "--out", "{w}/n10", "--tau", "2"], 2, r"tau .*\[0, 1\]"),
    (["train", "--dataset", "digits", "--out", "{w}/n11", "--data-option", "noequals"], 2,
     r"expected KEY=VALUE"),
    (["train", "--dataset", "digits", "--out", "{w}/n12", "--epochs", "three"], 2,
     r"argument --epochs: invalid int value: 'three'"),
    (["train", "--out", "{w}/csg", "--resume", "--lr", "0.5"], 2,
     r"uses its own config\.json, so --lr cannot be given; drop them \(only .*--device"),
    (["train", "--out", "{w}/csg", "--resume", "--no-gate", "--epochs", "9"], 2,
     r"so --epochs, --no-gate cannot be given"),
    # reading runs
    (["evaluate", "{w}/missing"], 1, r"run directory .*missing not found; train one with"),
    (["evaluate", "{w}/a_file.txt"], 1, r"a_file\.txt is a file, not a run directory"),
    (["evaluate", "{w}/empty"], 1, r"config\.json not found: not a run directory"),
    (["evaluate", "{w}/no_best", "--checkpoint", "best"], 1,
     r"best\.pt is missing although the run has 3 completed epoch\(s\).*--checkpoint last"),
    (["evaluate", "{w}/foreign"], 1,
     r"last\.pt holds the weights of another network than the run's config\.json describes"),
    (["evaluate", "{w}/csg", "--baseline", "{w}/other_data"], 2,
     r"--baseline .*other_data was trained with dataset 'fashion-mnist' but .* with 'digits'"),
    (["evaluate", "{w}/csg", "--recompute", "--jobs", "0"], 2, r"--jobs must be a positive"),
    (["evaluate", "{w}/csg", "--split", "holdout"], 2, r"invalid choice: 'holdout'"),
    (["filters", "{w}/csg", "--out", "{w}/missing/deeper/out"], 2,
     r"--out .*missing/deeper/out: the folder .* does not exist"),
    (["compare", "--csg", "{w}/csg", "--std", "{w}/std", "--json", "{w}/missing/c.json"], 2,
     r"--json .*c\.json: the folder .*missing does not exist"),
    # detect
    (["detect", "{w}/csg", "--eps", "0"], 2, r"--eps \[0\.0\] holds 0: an attack of radius 0"),
    (["detect", "{w}/csg", "--eps", "0.03", "0"], 2, r"holds 0"),
    (["detect", "{w}/csg", "--eps", "8"], 2, r"--eps is an L∞ radius .*did you mean 0\.0314"),
    (["detect", "{w}/csg", "--num-images", "0"], 2, r"--num-images must be a positive integer"),
    (["detect", "{w}/csg", "--out", "{w}/missing/detect"], 2, r"--out .* does not exist"),
    (["detect", "{w}/csg", "--baseline", "{w}/other_data"], 1,
     r"baseline was trained on 'fashion-mnist' but the run on 'digits'"),
    # export
    (["export", "{w}/csg", "--out", "{w}/export_dir"], 1, r"--out .*export_dir is a directory"),
    (["export", "{w}/csg", "--out", "{w}/missing/a/m.pt"], 2,
     r"the folder .*missing/a does not exist; create it first or pass --parents"),
    (["export", "{w}/missing", "--out", "{w}/m.pt"], 1, r"not found; train one with"),
    # explain, localize, report
    (["explain", "{w}/csg", "--num-images", "0"], 2, r"--num-images must be a positive integer"),
    (["explain", "{w}/csg", "--out", "{w}/missing/x"], 2, r"--out .* does not exist"),
    (["explain", "{w}/csg", "--images", "{w}/nope.png"], 1, r"image file .*nope\.png not found"),
    (["localize", "{w}/csg", "--batch-size", "0"], 2, r"--batch-size must be a positive integer"),
    (["localize", "{w}/csg", "--out", "{w}/missing/loc"], 2, r"--out .* does not exist"),
    (["localize", "{w}/csg", "--baseline", "{w}/other_data"], 2, r"--baseline .*trained with"),
    (["localize", "{w}/csg", "--sweep-step", "2"], 1, r"--sweep-step must lie in \(0, 1\)"),
    (["report", "{w}/csg", "--out", "{w}/missing/r.html"], 2, r"--out .* does not exist"),
]


def _argv(template: list[str], root: Path) -> list[str]:
    return [part.replace("{w}", str(root)) for part in template]


@pytest.mark.parametrize(("argv", "code", "pattern"), CLI_CASES,
                         ids=[" ".join(c[0][:3]).replace("{w}/", "") for c in CLI_CASES])
def test_cli_bad_input(world, capsys, argv, code, pattern):
    before = _snapshot(world)
    args = _argv(argv, world)
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    captured = capsys.readouterr()
    assert status == code, captured.err
    assert "Traceback" not in captured.err
    verb = args[0]
    lines = [line for line in captured.err.splitlines() if line.startswith("csg-interp")]
    error_lines = [line for line in lines if ": error:" in line]
    assert len(error_lines) == 1, captured.err
    line = error_lines[0]
    if verb in build_parser().verb_parsers:
        assert line.startswith(f"csg-interp {verb}: error: "), line
        body = line.split(": error: ", 1)[1]
        unknown = _unknown_flags(body, verb) - {"--jobz", "--epsilon", "--download"}
        assert not unknown, f"the message names flags {verb} does not have: {unknown}"
        if code == 2 and ("unrecognized" in line or "invalid" in line):
            assert f"usage: csg-interp {verb}" in captured.err  # the verb's usage, not the top's
    assert re.search(pattern, line), line
    assert len(line) < 700
    assert _snapshot(world) == before, "a bad input changed files that were there"


# -------------------------------------------------------------------------------- API cases
@pytest.fixture(scope="module")
def tiny_run(world):
    from csg_interp.training import load_run

    return load_run(world / "csg")


def _api_cases():
    from csg_interp.applications.attacks import attack
    from csg_interp.applications.pipeline import detect_run
    from csg_interp.attribution import CSGAttribution
    from csg_interp.data.folder import load_image_folder
    from csg_interp.metrics import extract_features, mutual_information_matrix
    from csg_interp.training import export_network, load_run
    from csg_interp.training.resume import resume_config

    nan = torch.full((2, 1, 8, 8), float("nan"))
    return [
        ("from_net gate shape", lambda w, r: CSGAttribution.from_net(r.net, gate=torch.ones(3, 5)),
         errors.InvalidParameterError, r"`gate` has shape \(3, 5\) but this network has 10 classes"),
        ("attribute NaN", lambda w, r: CSGAttribution.from_net(r.net).attribute(nan, target=0),
         errors.InvalidParameterError, r"`inputs` holds 128 NaN or infinite value"),
        ("attribute inf", lambda w, r: CSGAttribution.from_net(r.net).attribute(
            torch.full((1, 1, 8, 8), float("inf")), target=0),
         errors.InvalidParameterError, r"NaN or infinite"),
        ("attack NaN", lambda w, r: attack(r.net, nan, torch.tensor([0, 1]), eps=0.1),
         errors.InvalidParameterError, r"`images` holds 128 NaN"),
        ("features NaN", lambda w, r: extract_features(r.net, nan), errors.InvalidParameterError,
         r"`data` holds 128 NaN"),
        ("MI n_jobs=0", lambda w, r: mutual_information_matrix(
            np.random.rand(20, 4), np.arange(20) % 2, n_jobs=0),
         errors.InvalidParameterError, r"`n_jobs` must be a positive number"),
        ("load_run on a file", lambda w, r: load_run(w / "a_file.txt"), FileNotFoundError,
         r"is a file, not a run directory"),
        ("export to missing folder", lambda w, r: export_network(r, w / "missing" / "m.pt"),
         errors.InvalidParameterError, r"`path` .* does not exist.*`parents=True`"),
        ("resume_config with lr", lambda w, r: resume_config(w / "csg", lr=0.1),
         errors.InvalidParameterError, r"`lr` cannot be given"),
        ("resume_config without run", lambda w, r: resume_config(w / "empty"),
         errors.MissingInputError, r"holds no run to resume"),
        ("one-class folder", lambda w, r: load_image_folder(w / "one_class", image_size=12),
         errors.InvalidParameterError, r"one class folder"),
        ("detect eps 0", lambda w, r: detect_run(w / "csg", eps=[0.0]),
         errors.InvalidParameterError, r"`eps` \[0\.0\] holds 0"),
        ("threads", lambda w, r: errors.check_threads(0), errors.InvalidParameterError,
         r"`threads` must be an integer from 1"),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize(("name", "call", "error", "pattern"), API_CASES,
                         ids=[c[0] for c in API_CASES])
def test_api_bad_input(world, tiny_run, name, call, error, pattern):
    before = _snapshot(world)
    with pytest.raises(error) as raised:
        call(world, tiny_run)
    message = str(raised.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert not FLAG.findall(message), f"a library message names flags: {message}"
    assert _snapshot(world) == before


def test_pixels_outside_unit_range_warn_once(tiny_run, monkeypatch):
    from csg_interp.attribution import CSGAttribution

    monkeypatch.setattr(errors, "_warned_range", set())
    explainer = CSGAttribution.from_net(tiny_run.net)
    images = torch.full((2, 1, 8, 8), 200.0)
    with pytest.warns(errors.InputRangeWarning, match=r"ranges over \[200, 200\], outside \[0, 1\]"):
        explainer.attribute(images, target=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainer.attribute(images, target=0)  # once per process and parameter


def test_the_table_is_big_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 40


# ----------------------------------------------------------------- flags named in help texts
@pytest.mark.parametrize("verb", sorted(build_parser().verb_parsers))
def test_every_flag_named_in_help_exists(verb):
    parser = build_parser().verb_parsers[verb]
    text = parser.format_help()
    named = set(FLAG.findall(text))
    assert named, "the help names no flag at all?"
    assert named <= set(parser._option_string_actions), named - set(parser._option_string_actions)


def test_library_messages_become_the_verbs_flags():
    from csg_interp.cli import translate

    verbs = build_parser().verb_parsers
    assert translate("pass `download=True` or `data_root=DIR`", verbs["train"]) == (
        "pass --data-option download=true or --data-root DIR"
    )
    # evaluate has no --data-option: the Python spelling stays, without a made-up flag
    assert translate("pass `download=True`", verbs["evaluate"]) == "pass download=True"
    assert translate("`n_jobs` must be", verbs["evaluate"]) == "--jobs must be"
    assert translate("workers must be an integer ≥ 0", verbs["train"]) == "--workers must be an integer ≥ 0"
    assert translate("`resume=True`", verbs["train"]) == "--resume"
    assert translate("`unknown_thing`", verbs["train"]) == "unknown_thing"


def test_verbose_shows_the_traceback(world):
    with pytest.raises(FileNotFoundError):
        main(["evaluate", str(world / "missing"), "-v"])


def test_every_flag_named_in_the_library_exists_in_some_command():
    """A message raised deep in the library may surface through several commands; the flags it
    names must at least be real (the table above checks them per command where they surface)."""
    import ast

    import csg_interp

    parser = build_parser()
    known = set(parser._option_string_actions)
    for verb in parser.verb_parsers.values():
        known |= set(verb._option_string_actions)
    not_ours = {"--porcelain", "--untracked-files"}  # git's, in the manifest's revision query
    unknown = []
    for path in sorted(Path(csg_interp.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                unknown += [(path.name, node.lineno, flag) for flag in FLAG.findall(node.value)
                            if flag not in known | not_ours]  # fmt: skip
    assert not unknown
