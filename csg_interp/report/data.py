"""What the report shows, read from a run directory's files: one loader, no drawing.

:func:`load_report_data` is the only place that knows the run directory's layout (the files that
``train``, ``evaluate``, ``explain``, ``localize`` and ``detect`` write). The renderer
(:mod:`csg_interp.report.render`) only reads the :class:`ReportData` it returns, so the analyses
can change how they run as long as this function still finds their JSON files.

Every analysis file becomes a :class:`Source` that carries when it was computed and, when it
does not belong with the rest of the run, why (``stale``): a file older than the checkpoint it
describes, a ``metrics.json`` of another epoch, a sanity table left by an earlier ``explain``.
Only the files an analysis lists in its own JSON are read (explain's ``index.json`` names its
images; ``localize`` and ``detect`` name their models, methods and ε), so left-over images of an
earlier, larger run never reach the page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ReportData", "RunData", "Source", "load_report_data", "read_json"]

#: Seconds of slack when comparing a file's time with the checkpoint's.
_SLACK = 1.0


def read_json(path: Path) -> Any:
    """A JSON file, or a ``ValueError`` that says which file and what to do."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); re-run the command that wrote it"
        ) from None


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Source:
    """One analysis file as the report uses it.

    Attributes:
        path: the file.
        data: its parsed JSON.
        computed: when it was written (``YYYY-MM-DD HH:MM UTC``, from the file's time).
        stale: why it does not describe the current run (and what to re-run), else ``None``.
    """

    path: Path
    data: Any
    computed: str
    stale: str | None = None

    @classmethod
    def read(cls, path: Path) -> "Source | None":
        if not path.is_file():
            return None
        return cls(path, read_json(path), _utc(path.stat().st_mtime))


@dataclass
class RunData:
    """One run directory, read.

    Attributes:
        run_dir: the directory.
        manifest: ``manifest.json`` (``{}`` when missing).
        history: ``metrics.jsonl`` rows.
        run: the loaded :class:`~csg_interp.training.Run` (network in eval mode), or ``None``
            without a checkpoint.
        checkpoint: ``last`` or ``best``.
        metrics: ``metrics.json`` (``csg-interp evaluate``).
        explain: ``explain/index.json``.
        explanations: per image listed in ``index.json``, ``(entry, arrays)`` with the arrays of
            its ``.npz`` (``image``, ``class_map_upsampled``, ``filter_maps``, ...).
        sanity: ``explain/sanity.json``.
        localize: ``localize/metrics.json``.
        overlays: ``(model, method) → PNG`` of the localization overlays listed by ``localize``.
        detect: ``detect/metrics.json``.
        roc_figures: ``ε → PNG`` of the detection ROC figures listed by ``detect``.
        left_out: analysis files found but not listed by their analysis (left by earlier runs).
        atlas: ``atlas.html`` beside the report when ``csg-interp atlas`` wrote one, else ``None``.
    """

    run_dir: Path
    manifest: dict[str, Any]
    history: list[dict[str, Any]]
    run: Any
    checkpoint: str
    metrics: Source | None = None
    explain: Source | None = None
    explanations: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = field(default_factory=list)
    sanity: Source | None = None
    localize: Source | None = None
    overlays: dict[tuple[str, str], Path] = field(default_factory=dict)
    detect: Source | None = None
    roc_figures: dict[float, Path] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    atlas: Path | None = None

    @property
    def has_gate(self) -> bool:
        if self.run is not None:
            return self.run.net.gate is not None
        config = self.manifest.get("config") or {}
        return bool(config.get("gate", False))

    @property
    def kind(self) -> str:
        """``CSG`` or ``STD``."""
        return "CSG" if self.has_gate else "STD"

    @property
    def classes(self) -> list[str]:
        data = self.manifest.get("data") if isinstance(self.manifest.get("data"), Mapping) else {}
        return [str(c) for c in (data.get("classes") or self.manifest.get("classes") or [])]

    def mi_matrix(self) -> tuple[np.ndarray, list[str]] | None:
        """The C×K MI matrix of ``metrics.json`` (clipped at 0) and its class names."""
        if self.metrics is None or not isinstance(self.metrics.data, Mapping):
            return None
        matrix = self.metrics.data.get("mi_matrix")
        if not isinstance(matrix, list):
            return None
        array = np.clip(np.asarray(matrix, dtype=np.float64), 0.0, None)
        if array.ndim != 2:
            return None
        names = self.metrics.data.get("class_names") or self.classes
        if len(names) != array.shape[0]:
            names = [str(c) for c in range(array.shape[0])]
        return array, [str(n) for n in names]


@dataclass
class ReportData:
    """Everything :func:`~csg_interp.report.write_report` draws: the run and its baseline.

    Attributes:
        main: the run the report is about.
        baseline: the run it is compared with (usually the STD twin), or ``None``.
    """

    main: RunData
    baseline: RunData | None = None


# ------------------------------------------------------------------ checks
def _mark_if_older(source: Source, checkpoint: str, checkpoint_time: float | None,
                   command: str) -> None:
    """Mark ``source`` stale when it was written before the checkpoint it describes.

    Args:
        source: an analysis file.
        checkpoint: ``last`` or ``best``.
        checkpoint_time: the checkpoint file's modification time (``None``: no checkpoint).
        command: the ``csg-interp`` command that rewrites the file, named in the note.
    """
    if checkpoint_time is not None and source.path.stat().st_mtime + _SLACK < checkpoint_time:
        source.stale = (f"computed before {checkpoint}.pt was last written; re-run csg-interp "
                        f"{command}")


def _read_source(path: Path, data: RunData, checkpoint_time: float | None,
                 command: str) -> Source | None:
    """An analysis file of ``data``'s run, marked stale when older than its checkpoint.

    Args:
        path: the JSON file the analysis wrote.
        data: the run being read (its ``checkpoint`` is the one the file must describe).
        checkpoint_time: that checkpoint's modification time (``None``: no checkpoint).
        command: the command that rewrites the file (``explain``, ``localize``, ``detect``).

    Returns:
        The :class:`Source`, or ``None`` when the file does not exist.
    """
    source = Source.read(path)
    if source is not None:
        _mark_if_older(source, data.checkpoint, checkpoint_time, command)
    return source


def _unlisted(folder: Path, listed: set[str]) -> list[str]:
    """The files of an analysis folder that its JSON does not list (``"explain/old.png"``).

    Args:
        folder: ``explain/``, ``localize/`` or ``detect/`` of a run.
        listed: the names the analysis's JSON lists (and the JSON files themselves).

    Returns:
        ``"<folder>/<name>"`` per other file, sorted.
    """
    return [f"{folder.name}/{p.name}" for p in sorted(folder.glob("*"))
            if p.is_file() and p.name not in listed]


def _check_metrics(source: Source, manifest: Mapping[str, Any], checkpoint: str,
                   checkpoint_time: float | None) -> None:
    data = source.data if isinstance(source.data, Mapping) else {}
    done = manifest.get("epochs_done")
    if data.get("epochs_done") is not None and done is not None and data["epochs_done"] != done:
        source.stale = (f"measured after epoch {data['epochs_done']} but the run has "
                        f"{done} epochs; re-run csg-interp evaluate")
    elif data.get("checkpoint") not in (None, checkpoint):
        source.stale = (f"measured on the {data['checkpoint']} checkpoint, the report shows "
                        f"{checkpoint}; re-run csg-interp evaluate --checkpoint {checkpoint} or "
                        f"the report with --checkpoint {data['checkpoint']}")
    else:
        _mark_if_older(source, checkpoint, checkpoint_time, "evaluate")


def _read_explain(data: RunData, folder: Path, checkpoint_time: float | None) -> None:
    data.explain = _read_source(folder / "index.json", data, checkpoint_time, "explain")
    sanity = Source.read(folder / "sanity.json")
    listed: set[str] = {"index.json"}
    if data.explain is not None:
        info = data.explain.data.get("info", {}) if isinstance(data.explain.data, Mapping) else {}
        for entry in data.explain.data.get("images", []):
            npz = folder / str(entry.get("npz", ""))
            listed.update({str(entry.get("npz")), str(entry.get("png"))})
            if entry.get("npz") and npz.is_file():
                with np.load(npz) as arrays:
                    data.explanations.append((dict(entry), {k: arrays[k] for k in arrays.files}))
        claimed = info.get("sanity") if isinstance(info, Mapping) else None
        if sanity is not None:
            listed.add("sanity.json")
            if not claimed:
                sanity.stale = ("left by an earlier csg-interp explain run (the latest ran "
                                "without --sanity); re-run csg-interp explain --sanity N")
            elif claimed.get("images") != sanity.data.get("images"):
                sanity.stale = (f"covers {sanity.data.get('images')} images, the latest explain "
                                f"run checked {claimed.get('images')}; re-run csg-interp explain "
                                "--sanity N")
    data.sanity = sanity
    listed.add("sanity.md")
    data.left_out += _unlisted(folder, listed)


def _read_localize(data: RunData, folder: Path, checkpoint_time: float | None) -> None:
    data.localize = _read_source(folder / "metrics.json", data, checkpoint_time, "localize")
    if data.localize is None:
        return
    listed = {"metrics.json"}
    for model, summary in (data.localize.data.get("models") or {}).items():
        for method in (summary.get("methods") or {}):
            name = f"overlays_{model}_{method.replace('+', 'p')}.png"
            if (folder / name).is_file():
                data.overlays[(model, method)] = folder / name
                listed.add(name)
    data.left_out += _unlisted(folder, listed)


def _read_detect(data: RunData, folder: Path, checkpoint_time: float | None) -> None:
    data.detect = _read_source(folder / "metrics.json", data, checkpoint_time, "detect")
    if data.detect is None:
        return
    protocol = data.detect.data.get("protocol") or {}
    listed = {"metrics.json"}
    for eps in protocol.get("eps") or []:
        name = f"roc_{protocol.get('attack', 'pgd')}_eps{float(eps):g}.png"
        if (folder / name).is_file():
            data.roc_figures[float(eps)] = folder / name
            listed.add(name)
    data.left_out += _unlisted(folder, listed)


def _check_run_dir(directory: Path, what: str) -> None:
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{what} directory {directory} not found; train one with csg-interp train --out DIR"
        )
    if not any((directory / name).is_file() for name in ("config.json", "manifest.json")):
        raise FileNotFoundError(
            f"{directory} is not a run directory (no config.json or manifest.json); pass the "
            "folder that csg-interp train wrote"
        )


def load_run_data(run_dir: str | os.PathLike, checkpoint: str = "last",
                  analyses: bool = True) -> RunData:
    """Read one run directory (see :func:`load_report_data`); ``analyses=False`` reads only the
    training side and ``metrics.json``."""
    from csg_interp.training import load_run
    from csg_interp.training.runs import read_history

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    checkpoint_path = run_dir / f"{checkpoint}.pt"
    run = load_run(run_dir, checkpoint=checkpoint) if checkpoint_path.is_file() else None
    checkpoint_time = checkpoint_path.stat().st_mtime if checkpoint_path.is_file() else None
    data = RunData(run_dir, manifest, read_history(run_dir / "metrics.jsonl"), run, checkpoint)
    data.metrics = Source.read(run_dir / "metrics.json")
    if data.metrics is not None:
        _check_metrics(data.metrics, manifest, checkpoint, checkpoint_time)
    if analyses:
        if (run_dir / "atlas.html").is_file():
            data.atlas = run_dir / "atlas.html"
        if (run_dir / "explain").is_dir():
            _read_explain(data, run_dir / "explain", checkpoint_time)
        if (run_dir / "localize").is_dir():
            _read_localize(data, run_dir / "localize", checkpoint_time)
        if (run_dir / "detect").is_dir():
            _read_detect(data, run_dir / "detect", checkpoint_time)
    return data


def load_report_data(
    run_dir: str | os.PathLike,
    baseline: str | os.PathLike | None = None,
    checkpoint: str = "last",
) -> ReportData:
    """Read what the report shows from a run directory (and its baseline's).

    Args:
        run_dir: the run (``csg-interp train`` output plus whatever the analyses added:
            ``metrics.json``, ``explain/``, ``localize/``, ``detect/``).
        baseline: the run to compare with (usually the STD twin); its training history,
            ``metrics.json`` and explanations are read.
        checkpoint: ``last`` or ``best``: the network whose gate is drawn, and the one every
            analysis file is checked against.

    Returns:
        A :class:`ReportData`; each analysis file as a :class:`Source` with its time and, if it
        does not describe the current run, why (``Source.stale``).

    Raises:
        FileNotFoundError: if a directory is not a run directory.
        ValueError: for a malformed JSON file.

    Example:
        >>> data = load_report_data("runs/demo/runs/csg", "runs/demo/runs/std")  # doctest: +SKIP
        >>> data.main.metrics.data["mis"], data.main.metrics.computed  # doctest: +SKIP
        (0.171, '2026-12-01 20:28 UTC')
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, "run")
    if baseline is not None:
        _check_run_dir(Path(baseline), "baseline run")
    main = load_run_data(run_dir, checkpoint)
    other = load_run_data(baseline, checkpoint) if baseline is not None else None
    if other is not None:
        # Only the explanations of the baseline are shown; its other analyses live in the main
        # run's localize/ and detect/ (both models measured together).
        other.localize = other.detect = None
        other.overlays, other.roc_figures, other.left_out = {}, {}, []
    return ReportData(main, other)
