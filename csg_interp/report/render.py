"""``report.html`` from a :class:`~csg_interp.report.data.ReportData`: a document for a reader.

Order: a summary card (each headline number with its meaning and a pass/fail against the
baseline), then one section per analysis with a written caption that says what to look for and
a line that says when its data was computed, then the raw provenance folded in a ``<details>``.
Nothing here reads the run directory: :func:`~csg_interp.report.data.load_report_data` does.
A stale source (see :class:`~csg_interp.report.data.Source`) is marked and kept out of the
summary, never mixed with current numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .data import ReportData, RunData, Source
from .html import HtmlReport

__all__ = ["render_report", "summary_rows"]

_FILTER_COLUMNS = ("filter", "gate_class_name", "gate_value", "open_classes", "mi_class_name",
                   "mi_max", "agree")
_METHOD_NAMES = {"csg": "CSG map", "cam": "CAM", "gradcam": "Grad-CAM",
                 "gradcam++": "Grad-CAM++", "gradcampp": "Grad-CAM++"}


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _computed(source: Source, what: str) -> str:
    return f"Computed {source.computed} by {what}."


def _metrics_pair(data: ReportData) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The main run's evaluation and the baseline's (from the main file or the baseline's)."""
    main = data.main.metrics.data if data.main.metrics else {}
    base = main.get("baseline") if isinstance(main.get("baseline"), Mapping) else None
    if base is None and data.baseline is not None and data.baseline.metrics is not None:
        if not data.baseline.metrics.stale:
            base = data.baseline.metrics.data
    return main, base


def _names(data: ReportData) -> tuple[str, str]:
    base = data.baseline.kind if data.baseline is not None else "baseline"
    main = data.main.kind
    return (main, base) if main != base else (f"{main} (this run)", f"{base} (baseline)")


# ------------------------------------------------------------------ summary
def summary_rows(data: ReportData) -> list[dict[str, Any]]:
    """The summary card's rows: ``name``, ``value``, ``meaning``, ``verdict``, ``computed``.

    ``verdict`` is ``True``/``False`` against the baseline and the documented targets
    (:data:`csg_interp.metrics.runs.DEFAULT_TARGETS`), ``None`` where there is nothing to compare,
    or ``"stale"`` when the source does not describe the current run.
    """
    from csg_interp.metrics.runs import DEFAULT_TARGETS

    main, base = data.main, data.baseline
    name, base_name = _names(data)
    config = main.manifest.get("config") or {}
    sizes = (main.manifest.get("data") or {}).get("sizes") or {}
    size_text = " / ".join(f"{sizes[k]} {k}" for k in ("train", "val", "test") if k in sizes)
    rows: list[dict[str, Any]] = [{
        "name": "model and data",
        "value": f"{config.get('model', '?')} on {config.get('dataset', '?')}",
        "meaning": (f"{size_text} images, {config.get('epochs', '?')} epochs, "
                    f"{config.get('preset', '?')} preset, seed {config.get('seed', '?')}; "
                    + (f"compared with the {base.kind} run {base.run_dir.name}."
                       if base is not None else "no baseline given.")),
        "verdict": None,
    }]
    metrics, base_metrics = _metrics_pair(data)
    if base is None and base_metrics and base_metrics.get("kind"):
        base_name = str(base_metrics["kind"]).upper()  # evaluate --baseline recorded its kind
    source = main.metrics
    stale = source is not None and source.stale
    computed = _computed(source, "csg-interp evaluate") if source else None

    def add(row: dict[str, Any]) -> None:
        if stale:
            row.update(value="(stale)", verdict="stale", meaning=f"{row['meaning']} {source.stale}")
        rows.append({**row, "computed": computed})

    if metrics.get("accuracy") is not None:
        value = f"{name} {metrics['accuracy']:.3f}"
        verdict = None
        if base_metrics and base_metrics.get("accuracy") is not None:
            delta = 100 * (metrics["accuracy"] - base_metrics["accuracy"])
            value += f" · {base_name} {base_metrics['accuracy']:.3f} ({delta:+.1f} points)"
            verdict = delta >= -DEFAULT_TARGETS["accuracy_drop_max_points"]
        add({"name": "accuracy", "value": value, "verdict": verdict,
             "meaning": (f"Top-1 accuracy on {metrics.get('n', '?')} {metrics.get('split', 'test')} "
                         f"images; the gate may cost at most "
                         f"{DEFAULT_TARGETS['accuracy_drop_max_points']:g} point.")})
    if metrics.get("mis") is not None:
        value = f"{name} {metrics['mis']:.3f}"
        verdict = None
        comparison = metrics.get("comparison") or {}
        if base_metrics and base_metrics.get("mis"):
            ratio = metrics["mis"] / base_metrics["mis"]
            value += f" · {base_name} {base_metrics['mis']:.3f} (×{ratio:.2f})"
            gap = comparison.get("gap_closed")
            if gap is not None:
                value += f", {100 * gap:.0f} % of the gap closed"
                verdict = gap >= DEFAULT_TARGETS["gap_closed_min"]
            else:
                verdict = ratio > 1.0
        add({"name": "MIS", "value": value, "verdict": verdict,
             "meaning": ("Mean over filters of each filter's largest mutual information with one "
                         "class (nats): higher = more class-specific filters. Target: at least "
                         f"{100 * DEFAULT_TARGETS['gap_closed_min']:.0f} % of the baseline's gap "
                         f"to the ceiling ({_fmt(metrics.get('mi_ceiling'))}) closed.")})
    if metrics.get("l1_density") is not None:
        classes = metrics.get("num_classes")
        one = f" (1/C = {1 / classes:.3f})" if classes else ""
        add({"name": "L1-density", "value": f"{metrics['l1_density']:.3f}{one}",
             "verdict": metrics["l1_density"] <= DEFAULT_TARGETS["l1_density_max"],
             "meaning": ("How many classes each filter is open for in the gate, as a share of "
                         "all classes: 1/C = one class per filter. Target: at most "
                         f"{DEFAULT_TARGETS['l1_density_max']:g}.")})
    rows += _localization_row(main)
    rows += _detection_row(main)
    rows += _sanity_row(main)
    return rows


def _best_std_method(models: Mapping[str, Any]) -> tuple[str, str, float] | None:
    best = None
    for model, summary in models.items():
        if model.startswith("csg"):
            continue
        for method, values in (summary.get("methods") or {}).items():
            if values.get("gt_known_loc") is not None and (best is None
                                                          or values["gt_known_loc"] > best[2]):
                best = (model, method, values["gt_known_loc"])
    return best


def _localization_row(run: RunData) -> list[dict[str, Any]]:
    source = run.localize
    if source is None:
        return []
    models = source.data.get("models") or {}
    csg = (models.get("csg") or {}).get("methods", {}).get("csg")
    if not csg:
        return []
    row = {"name": "localization", "computed": _computed(source, "csg-interp localize"),
           "meaning": ("GT-known Loc: share of test scenes whose box from the true class's map "
                       "overlaps the true box with IoU ≥ 0.5. Baseline: the best map of the STD "
                       "model (CAM or Grad-CAM on the same scenes).")}
    value = f"CSG map {csg['gt_known_loc']:.3f}"
    best = _best_std_method(models)
    verdict = None
    if best is not None:
        value += f" · STD {_METHOD_NAMES.get(best[1], best[1])} {best[2]:.3f}"
        verdict = csg["gt_known_loc"] > best[2]
    row.update(value=value, verdict=verdict)
    if source.stale:
        row.update(value="(stale)", verdict="stale", meaning=f"{row['meaning']} {source.stale}")
    return [row]


def _detection_row(run: RunData) -> list[dict[str, Any]]:
    source = run.detect
    if source is None:
        return []
    auc = {(r.get("model"), r.get("score"), r.get("eps")): r.get("auc")
           for r in source.data.get("rows") or []}
    eps_values = sorted({key[2] for key in auc if key[2] is not None})
    parts, verdicts = [], []
    for eps in eps_values:
        csg, std = auc.get(("csg", "gate", eps)), auc.get(("std", "mi-gate", eps))
        if csg is None:
            continue
        parts.append(f"ε {eps:g}: {csg:.2f}" + (f" vs {std:.2f}" if std is not None else ""))
        if std is not None:
            verdicts.append(csg > max(std, 0.5))
    if not parts:
        return []
    row = {"name": "adversarial detection", "value": "; ".join(parts),
           "verdict": all(verdicts) if verdicts else None,
           "computed": _computed(source, "csg-interp detect"),
           "meaning": ("ROC AUC of the unsupervised gate-consistency score separating successful "
                       f"{str(source.data.get('protocol', {}).get('attack', 'PGD')).upper()} "
                       "inputs from their clean images (0.5 = chance), CSG vs the same score on "
                       "the STD model through its MI gate; passes above both that and 0.5.")}
    if source.stale:
        row.update(value="(stale)", verdict="stale", meaning=f"{row['meaning']} {source.stale}")
    return [row]


def _sanity_row(run: RunData) -> list[dict[str, Any]]:
    source = run.sanity
    if source is None or source.stale:
        return []
    finals = _final_spearman(source.data)
    if "CSGAttribution" not in finals:
        return []
    value = " · ".join(f"{method} {rho:.2f}" for method, rho in finals.items())
    return [{"name": "sanity check", "value": value, "verdict": finals["CSGAttribution"] < 0.9,
             "computed": _computed(source, "csg-interp explain --sanity"),
             "meaning": ("Spearman ρ between a map and the map after every layer's weights are "
                         "randomised: well below 1 = the map depends on what the model learned "
                         "(fails at ρ ≥ 0.9).")}]


def _final_spearman(sanity: Mapping[str, Any]) -> dict[str, float]:
    rows = sanity.get("rows") or []
    if not rows:
        return {}
    last = max(r.get("step", 0) for r in rows)
    return {r["method"]: float(r["spearman"]) for r in rows if r.get("step") == last}


# ------------------------------------------------------------------ sections
def _training(report: HtmlReport, data: ReportData) -> None:
    from .curves import plot_training_curves

    if not data.main.history:
        return
    updated = _when(data.main.manifest.get("updated"))
    report.section("Training", f"Trained until {updated} ({data.main.manifest.get('status', '?')}"
                   f", {data.main.manifest.get('epochs_done', '?')} epochs)." if updated else None)
    baseline = data.baseline.history if data.baseline is not None else None
    figure, _ = plot_training_curves(data.main.history, baseline or None)
    caption = ("Loss, validation accuracy, gate density and learning rates per epoch. Shaded: the "
               "CSG epochs, in which the gate trains. ")
    if baseline:
        caption += "Dashed: the baseline. Look for: the two validation accuracies ending close. "
    caption += "A loss that jumps at a shaded epoch is the CSG path starting to train."
    report.figure(figure, caption)


def _gate(report: HtmlReport, data: ReportData) -> None:
    from csg_interp.attribution.displays import GateHeatmapDisplay, GateWeightPanelsDisplay

    run, base = data.main.run, data.baseline.run if data.baseline is not None else None
    if run is None or run.net.gate is None:
        return
    path = data.main.run_dir / f"{data.main.checkpoint}.pt"
    report.section("The class-specific gate",
                   f"From the {data.main.checkpoint} checkpoint, written {_utc_of(path)}.")
    look = (" Look for: one bright block per class along the diagonal (each filter open for one "
            "class); bright columns are filters shared by many classes.")
    if base is not None and base.net.gate is None:
        try:
            panels = GateWeightPanelsDisplay.from_nets(run.net, base.net, run.classes or None)
        except ValueError as error:  # a head that is not GAP → linear has no W to show
            report.paragraph(f"The gate next to the classifier weights is not drawn: {error}",
                             note=True)
        else:
            report.figure(panels.figure_, panels.caption + look)
            return
    display = GateHeatmapDisplay.from_net(run.net, run.classes or None)
    report.figure(display.figure_, display.caption + look)


def _when(stamp: Any) -> str:
    """An ISO time stamp as ``YYYY-MM-DD HH:MM UTC`` (as it came, if it does not parse)."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _utc_of(path: Any) -> str:
    from .data import _utc

    return _utc(path.stat().st_mtime)


def _filters(report: HtmlReport, data: ReportData) -> None:
    from csg_interp.attribution.displays import MIComparisonDisplay, MIHeatmapDisplay
    from csg_interp.metrics import filter_table

    source = data.main.metrics
    mi = data.main.mi_matrix()
    if mi is None:
        return
    report.section("Which filters serve which class", _computed(source, "csg-interp evaluate"))
    if source.stale:
        report.stale(f"These matrices are stale: {source.stale}.")
    baseline_mi = None
    if data.baseline is not None and data.baseline.metrics is not None:
        if not data.baseline.metrics.stale:
            baseline_mi = data.baseline.mi_matrix()
    look = (" Look for: in the CSG model each filter (column) bright for one class only; in the "
            "STD model bright values spread over several classes.")
    if baseline_mi is not None and baseline_mi[0].shape[0] == mi[0].shape[0]:
        display = MIComparisonDisplay.from_matrices(mi[0], baseline_mi[0], mi[1],
                                                    names=_names(data))
    else:
        display = MIHeatmapDisplay.from_matrix(mi[0], mi[1])
    report.figure(display.figure_, display.caption + look)
    gate = None
    run = data.main.run
    if run is not None and run.net.gate is not None:
        gate = run.net.gate.weight.detach()
        if tuple(gate.shape) != mi[0].shape:
            gate = None
    rows = filter_table(mi[0], gate, mi[1]).rows
    columns = [c for c in _FILTER_COLUMNS if c in rows[0]] or list(rows[0])
    report.table(rows, columns, collapsed=f"The filter table ({len(rows)} filters: the class each "
                 "filter's gate opens for and the class it is most informative about)")


def _atlas_link(report: HtmlReport, data: ReportData) -> None:
    """A link to ``atlas.html`` when ``csg-interp atlas`` wrote one beside the report."""
    if data.main.atlas is not None:
        report.link("The filter atlas (atlas.html)", "atlas.html", ": every filter's top images "
                    "and the region it fires on, with its gate and MI class (csg-interp atlas).")


def _explanations(report: HtmlReport, data: ReportData, max_images: int) -> None:
    from .figures import plot_explanation_grid

    runs = [r for r in (data.main, data.baseline) if r is not None and r.explain is not None]
    if not runs:
        return
    first = runs[0].explain
    report.section("Explanations", _computed(first, "csg-interp explain"))
    for run in runs:
        info = run.explain.data.get("info") or {}
        label = f"{run.kind} model" + (" (baseline)" if run is data.baseline else "")
        report.subheading(label)
        if run is not runs[0]:
            report.paragraph(_computed(run.explain, "csg-interp explain"), note=True)
        if run.explain.stale:
            report.stale(f"These explanations are stale: {run.explain.stale}.")
        shown = run.explanations[:max_images]
        if not shown:
            report.paragraph("explain listed no image whose arrays are present.", note=True)
            continue
        gate = str(info.get("gate", "?"))
        gate = ("its learned gate" if gate == "learned" else
                f"a gate built from its MI matrix ({gate[2:].strip(' ()')})"
                if gate.startswith("mi") else f"the {gate} gate")
        sources = ", ".join(str(e.get("source")) for e, _ in shown)
        caption = (f"{label}, explained through {gate}: per image ({sources}), the image with its "
                   f"true label, the class map of the predicted class ({info.get('mode', 'cam')} "
                   "mode) over it, and the filters that fired for that class with their gate "
                   f"values G (at most {info.get('top_n', '?')}, G ≥ {info.get('min_gate', '?')})."
                   " Look for: filter maps that light up where the class map does.")
        report.figure(plot_explanation_grid(shown), caption)
        if len(run.explanations) > len(shown):
            report.paragraph(f"{len(run.explanations) - len(shown)} more explained image(s) are "
                             "in the run directory.", note=True)
        _sanity(report, run)


def _sanity(report: HtmlReport, run: RunData) -> None:
    source = run.sanity
    if source is None:
        return
    if source.stale:
        report.stale(f"The sanity check is left out: {source.stale}.")
        return
    rows = [r for r in source.data.get("rows") or []]
    methods = sorted({r["method"] for r in rows})
    table = []
    for step in sorted({r["step"] for r in rows}):
        cells = {r["method"]: r["spearman"] for r in rows if r["step"] == step}
        randomized = next(r["randomized"] for r in rows if r["step"] == step)
        table.append({"randomised up to": randomized, **{m: cells.get(m) for m in methods}})
    report.paragraph(
        f"Sanity check on {source.data.get('images', '?')} images ({source.computed}): Spearman ρ "
        "between each method's map and its map after randomising the model's layers from the "
        "top down (cascading randomisation). Look for: ρ falling well below 1.")
    report.table(table)


def _localization(report: HtmlReport, data: ReportData) -> None:
    from .figures import plot_overlay_rows

    source = data.main.localize
    if source is None:
        return
    report.section("Localization", _computed(source, "csg-interp localize"))
    if source.stale:
        report.stale(f"These results are stale: {source.stale}.")
    scene = source.data.get("data") or {}
    models = source.data.get("models") or {}
    rows = []
    for model, summary in models.items():
        for method, values in (summary.get("methods") or {}).items():
            rows.append({"model": model.upper(), "map": _METHOD_NAMES.get(method, method),
                         "GT-known Loc": values.get("gt_known_loc"),
                         "Top-1 Loc": values.get("top1_loc"),
                         "MaxBoxAcc v2": values.get("max_box_acc_v2"),
                         "mask IoU": values.get("mask_iou"),
                         "threshold": values.get("threshold")})
    report.paragraph(
        f"Boxes from each map on {scene.get('test_images', '?')} test scenes "
        f"({scene.get('dataset', 'scenes')}), at the threshold chosen on "
        f"{scene.get('val_images', '?')} validation scenes. GT-known Loc: the box of the true "
        "class's map has IoU ≥ 0.5 with the true box; Top-1 Loc: the same and the prediction is "
        "right; MaxBoxAcc v2: the best threshold, averaged over IoU 0.3/0.5/0.7.")
    report.table(rows)
    if data.main.overlays:
        labelled = {}
        for (model, method), path in data.main.overlays.items():
            values = (models.get(model, {}).get("methods") or {}).get(method, {})
            labelled[f"{model.upper()} model\n{_METHOD_NAMES.get(method, method)}\n"
                     f"GT-known {_fmt(values.get('gt_known_loc'), 2)}"] = path
        report.figure(plot_overlay_rows(labelled),
                      "The first test scenes, one row per model and map: the map blended over "
                      "the scene, the true box in green and the predicted box in red (no red box: "
                      "the map gave none). Look for: red boxes on the green ones, and maps that "
                      "stay off the clutter.")


def _detection(report: HtmlReport, data: ReportData) -> None:
    from .html import image_file_to_data_uri

    source = data.main.detect
    if source is None:
        return
    report.section("Adversarial-sample detection", _computed(source, "csg-interp detect"))
    if source.stale:
        report.stale(f"These results are stale: {source.stale}.")
    protocol = source.data.get("protocol") or {}
    rows = source.data.get("rows") or []
    models = sorted({r.get("model") for r in rows})
    table: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in rows:
        cell = table.setdefault((row.get("eps"), row.get("score")),
                                {"ε": f"{row.get('eps'):g}", "score": row.get("score")})
        cell[f"AUC {str(row.get('model')).upper()}"] = row.get("auc")
    report.paragraph(
        f"{str(protocol.get('attack', '?')).upper()} with {protocol.get('steps', '?')} steps on "
        f"{protocol.get('num_images', '?')} {protocol.get('evaluation_split', 'test')} images; "
        "each score separates successful attacks from the same clean images (ROC AUC, 0.5 = "
        f"chance), fitted on {protocol.get('fit_images', '?')} {protocol.get('fit_split', 'val')} "
        "images. gate: the learned gate's consistency; mi-gate: the same with a gate built from "
        "the MI matrix; max-softmax and mahalanobis: the usual baselines.")
    report.table(list(table.values()),
                 ["ε", "score"] + [f"AUC {str(m).upper()}" for m in models])
    attacks = source.data.get("attacks") or []
    if attacks:
        report.table([{"model": str(a.get("model")).upper(), "ε": a.get("eps"),
                       "clean accuracy": a.get("clean_accuracy"),
                       "attack success": a.get("success_rate"),
                       "pairs": a.get("n_success")} for a in attacks],
                     collapsed="How often the attack succeeded")
    for eps, path in sorted(data.main.roc_figures.items()):
        report.figure(image_file_to_data_uri(path),
                      f"ROC curves of every score at ε = {eps:g} for both models. Look for: the "
                      "gate score's curve above the diagonal and above the baselines'.")


def _provenance(report: HtmlReport, data: ReportData) -> None:
    from .tables import flatten_metrics

    report.section("Provenance")
    report.paragraph("Where every number came from: the run directories, the software and the "
                     "full configuration, folded below.", note=True)
    for run in (data.main, data.baseline):
        if run is None:
            continue
        manifest = run.manifest
        report.open_details(f"{run.kind} run: {run.run_dir.name}")
        rows = [{"item": "run directory", "value": str(run.run_dir)},
                {"item": "status", "value": manifest.get("status")},
                {"item": "last written", "value": manifest.get("updated")},
                {"item": "epochs done", "value": manifest.get("epochs_done")},
                {"item": "device", "value": manifest.get("device")}]
        git = manifest.get("git")
        if isinstance(git, Mapping):
            rows.append({"item": "git revision", "value": f"{git.get('revision', '?')}"
                         + (" (uncommitted changes)" if git.get("dirty") else "")})
        elif git:
            rows.append({"item": "git revision", "value": str(git)})
        for name, version in (manifest.get("versions") or {}).items():
            rows.append({"item": name, "value": version})
        report.table(rows)
        config = manifest.get("config") or {}
        if config:
            report.table([{"setting": k, "value": v} for k, v in flatten_metrics(config).items()])
        if run.metrics is not None:
            values = {k: v for k, v in flatten_metrics(run.metrics.data).items()
                      if not isinstance(v, str) or len(v) < 80}
            report.table([{"evaluate output": k, "value": v} for k, v in values.items()])
        report.close_details()
    protocols = [(name, src) for name, src in (("localize", data.main.localize),
                                                ("detect", data.main.detect)) if src is not None]
    for name, source in protocols:
        report.open_details(f"{name}: protocol and data")
        values = flatten_metrics({"protocol": source.data.get("protocol"),
                                  "data": source.data.get("data")})
        report.table([{"setting": k, "value": v} for k, v in values.items() if v is not None])
        report.close_details()
    if data.main.left_out:
        report.open_details(f"{len(data.main.left_out)} file(s) left out (from earlier runs)")
        report.table([{"file": name} for name in data.main.left_out])
        report.close_details()


def render_report(data: ReportData, max_images: int = 24) -> HtmlReport:
    """Lay the document out (figures drawn and embedded, nothing computed but drawing).

    Args:
        data: what :func:`~csg_interp.report.data.load_report_data` read.
        max_images: explained images shown per run.

    Returns:
        The :class:`~csg_interp.report.html.HtmlReport`; ``render()`` gives the HTML.
    """
    kind = data.main.kind
    title = f"{kind} run {data.main.run_dir.name}"
    if data.baseline is not None:
        title += f" vs {data.baseline.kind} run {data.baseline.run_dir.name}"
    report = HtmlReport(f"csg_interp report: {title}")
    report.section("Summary")
    report.card(summary_rows(data))
    _training(report, data)
    _gate(report, data)
    _filters(report, data)
    _atlas_link(report, data)
    _explanations(report, data, max_images)
    _localization(report, data)
    _detection(report, data)
    _provenance(report, data)
    return report
