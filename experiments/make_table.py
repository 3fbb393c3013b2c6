"""Rebuild the STD-vs-CSG tables from the sweep's raw JSON files (no training, no MI).

Usage::

    python experiments/make_table.py                    # protocol "main", Markdown to stdout
    python experiments/make_table.py --out experiments/results/main/TABLE.md
    python experiments/make_table.py --protocol full    # experiments/full_accuracy.py's runs
    python experiments/make_table.py --protocol vit/full  # experiments/vit_fashion_mnist.py's
    python experiments/make_table.py --protocol localization/full  # localization_full.py's

Per run: accuracy, MIS, normalised MIS, ceiling, L1-density, gate/MI agreement, filters per class.
Per variant (mean ± std over the seeds present): the same, then against its STD twin (``std_X``
for ``csg_X`` when trained, else ``std``): MIS ratio, the share
of the STD→ceiling gap closed (ceiling from the STD runs), the accuracy change, and the project's
checks (every CSG seed's MIS above every STD seed's, gap closed ≥ 50 %, accuracy within 1 point,
L1-density ≤ 0.15). The ``full`` tables end with each gated variant against its STD twin and
against the paper's method (``csg``), each at the seeds both have.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from csg_interp.metrics.evaluation import compare_metrics, summarize  # noqa: E402
from csg_interp.workflows.evaluate import DEFAULT_TARGETS  # noqa: E402
from csg_interp.workflows.evaluate import format_value as _fmt  # noqa: E402


def _mean_std(summary: dict, key: str, digits: int = 4) -> str:
    entry = summary.get(key)
    if not isinstance(entry, dict):
        return "–"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


def load_results(protocol: str) -> dict[str, list[dict]]:
    """Result JSONs by variant. The ``full`` protocol's files (experiments/full_accuracy.py) hold
    the test metrics under ``test`` and the wall time under ``train_wall_s``; they are read into
    the sweep's keys (``metrics``, ``train_seconds``). Files without metrics (the benchmark's bare
    loop) are left out."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for path in sorted((HERE / "results" / protocol).glob("*.json")):
        result = json.loads(path.read_text())
        result.setdefault("metrics", result.get("test"))
        result.setdefault("train_seconds", result.get("train_wall_s"))
        if result["metrics"] is None:
            continue
        by_variant[result["variant"]].append(result)
    for results in by_variant.values():
        results.sort(key=lambda r: r["seed"])
    # STD first, then the variants by name.
    return {name: by_variant[name] for name in sorted(by_variant, key=lambda n: (n != "std", n))}


def build_tables(protocol: str) -> str:
    """The Markdown tables of one protocol's committed results (``localization/<name>``:
    :func:`localization_tables`)."""
    if protocol.startswith("localization/"):
        return localization_tables(protocol)
    by_variant = load_results(protocol)
    if "std" not in by_variant:
        raise SystemExit(f"no STD run in experiments/results/{protocol}/ yet")
    lines = [f"### Runs ({protocol})", ""]
    lines.append("| variant | seed | test acc | MIS | MIS norm. | ceiling | L1-density | agree | "
                 "filters/class (MI argmax) | train s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for variant, results in by_variant.items():
        for r in results:
            m = r["metrics"]
            lines.append(
                f"| {variant} | {r['seed']} | {_fmt(m['accuracy'])} | {_fmt(m['mis'])} | "
                f"{_fmt(m['mis_normalized'])} | {_fmt(m['mi_ceiling'])} | {_fmt(m['l1_density'])} | "
                f"{_fmt(m['gate_mi_agreement'], 3)} | {','.join(map(str, m['filters_per_class_mi']))} | "
                f"{r['train_seconds']:.0f} |"
            )
    lines += ["", f"### Means over seeds ({protocol}), against STD", ""]
    lines.append("| variant | seeds | test acc | MIS | MIS norm. | ceiling | L1-density | STD twin | "
                 "MIS ratio | gap closed | Δacc (pt) | all CSG > all STD | bar met |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for variant, results in by_variant.items():
        metrics = [r["metrics"] for r in results]
        summary = summarize(metrics)
        row = (f"| {variant} | {','.join(str(r['seed']) for r in results)} | "
               f"{_mean_std(summary, 'accuracy')} | {_mean_std(summary, 'mis')} | "
               f"{_mean_std(summary, 'mis_normalized')} | {_mean_std(summary, 'mi_ceiling')} | "
               f"{_mean_std(summary, 'l1_density')} |")
        if variant.startswith("std"):
            lines.append(row + " – | 1 | 0 | 0 | – | – |")
            continue
        twin = std_twin(variant, by_variant)
        std_runs = [r["metrics"] for r in by_variant[twin]]
        std_summary = summarize(std_runs)
        std_means = {k: v["mean"] for k, v in std_summary.items() if isinstance(v, dict)}
        std_means["n_mi"] = std_summary["n_mi"]
        means = {k: v["mean"] for k, v in summary.items() if isinstance(v, dict)}
        means["n_mi"] = summary["n_mi"]
        comparison = compare_metrics(means, std_means)
        above = min(m["mis"] for m in metrics) > max(m["mis"] for m in std_runs)
        density = means.get("l1_density")
        met = (
            above
            and comparison["gap_closed"] is not None
            and comparison["gap_closed"] >= DEFAULT_TARGETS["gap_closed_min"]
            and comparison["delta_accuracy_points"] >= -DEFAULT_TARGETS["accuracy_drop_max_points"]
            and density is not None
            and density <= DEFAULT_TARGETS["l1_density_max"]
        )
        lines.append(
            row + f" {twin} | {_fmt(comparison['mis_ratio'], 3)} | "
            f"{_fmt(comparison['gap_closed'], 3)} | {comparison['delta_accuracy_points']:+.2f} | "
            f"{'yes' if above else 'no'} | {'**yes**' if met else 'no'} |"
        )
    if protocol == "full":
        lines += against_twin_table(by_variant)
        lines += against_paper_method(by_variant)
    return "\n".join(lines) + "\n"


def against_twin(by_variant: dict[str, list[dict]]) -> list[dict]:
    """Each gated variant against its STD twin (:func:`std_twin`) at the seeds both have.

    A one-seed ablation is then compared with the twin's run of the same seed, not with the mean
    of the twin's three seeds (the STD MIS spreads 0.181-0.195 over seeds on the full protocol).

    Returns:
        One dict per gated variant with a common seed: ``variant``, ``twin``, ``seeds``, the
        means ``acc``/``mis`` of the variant and ``twin_acc``/``twin_mis`` of the twin,
        ``mis_ratio``, ``delta_acc_points`` and ``all_above`` (every seed's MIS above every twin
        seed's).
    """
    rows = []
    for variant, results in by_variant.items():
        if variant.startswith("std"):
            continue
        twin = std_twin(variant, by_variant)
        seeds, ours, theirs = at_common_seeds(results, by_variant.get(twin, []))
        if not seeds:
            continue
        acc, mis = _mean(ours, "accuracy"), _mean(ours, "mis")
        twin_acc, twin_mis = _mean(theirs, "accuracy"), _mean(theirs, "mis")
        rows.append({
            "variant": variant, "twin": twin, "seeds": seeds, "acc": acc, "mis": mis,
            "twin_acc": twin_acc, "twin_mis": twin_mis, "mis_ratio": mis / twin_mis,
            "delta_acc_points": 100 * (acc - twin_acc),
            "all_above": min(m["mis"] for m in ours) > max(m["mis"] for m in theirs),
        })  # fmt: skip
    return rows


def against_twin_table(by_variant: dict[str, list[dict]]) -> list[str]:
    """Markdown rows of :func:`against_twin`."""
    rows = against_twin(by_variant)
    if not rows:
        return []
    lines = ["", "### Each variant against its STD twin, at the same seeds", "",
             "| variant | STD twin | seeds | test acc | twin's acc | Δacc (pt) | MIS | twin's MIS | "
             "MIS ratio | all seeds above the twin's |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['twin']} | {','.join(map(str, row['seeds']))} | "
            f"{row['acc']:.4f} | {row['twin_acc']:.4f} | {row['delta_acc_points']:+.2f} | "
            f"{row['mis']:.4f} | {row['twin_mis']:.4f} | {row['mis_ratio']:.3f} | "
            f"{'yes' if row['all_above'] else 'no'} |"
        )
    return lines


def at_common_seeds(ours: list[dict], theirs: list[dict]) -> tuple[list[int], list[dict], list[dict]]:
    """The seeds two variants' runs share, and each side's metrics at those seeds."""
    seeds = sorted({r["seed"] for r in ours} & {r["seed"] for r in theirs})
    return (seeds, [r["metrics"] for r in ours if r["seed"] in seeds],
            [r["metrics"] for r in theirs if r["seed"] in seeds])  # fmt: skip


def _mean(runs: list[dict], key: str) -> float:
    return sum(m[key] for m in runs) / len(runs)


def model_of(results: list[dict]) -> str:
    """The architecture a variant's runs trained (``config.model``; ``resnet8`` when absent)."""
    return results[0].get("config", {}).get("model", "resnet8") if results else "resnet8"


def plain_variant(prefix: str, model: str, by_variant: dict[str, list[dict]]) -> str | None:
    """The shortest-named variant starting with ``prefix`` that trained ``model``: the plain
    STD twin (``std``, ``std_r20``) or the paper's method (``csg``, ``csg_r20``) of an
    architecture; ``None`` when there is none."""
    names = [v for v in by_variant if v.startswith(prefix) and model_of(by_variant[v]) == model]
    return min(names, key=lambda v: (len(v), v)) if names else None


def std_twin(variant: str, by_variant: dict[str, list[dict]]) -> str:
    """The STD twin a gated variant is compared with: ``std<suffix>`` for ``csg<suffix>`` when
    that twin was trained (e.g. ``csg_ls`` → ``std_ls``, the same recipe without the gate),
    else the plain STD run of the variant's architecture (``std``, or ``std_r20`` for a
    ResNet-20 variant), else ``std``."""
    if variant.startswith("csg"):
        twin = "std" + variant[len("csg"):]
        if twin in by_variant:
            return twin
    return plain_variant("std", model_of(by_variant.get(variant, [])), by_variant) or "std"


def against_paper_method(by_variant: dict[str, list[dict]], paper: str = "csg") -> list[str]:
    """Rows comparing each gated variant with the paper's method at the seeds both have: with
    ``paper`` for the default architecture and, for a variant of another one, with that
    architecture's plain CSG run (``csg_r20`` for a ResNet-20 variant, :func:`plain_variant`).

    *Wins* follows the science protocol of docs/metrics.md: higher MIS beyond the seed spread
    (every seed of the variant above every seed of the paper's method) at no lower mean accuracy,
    or accuracy beyond the seed spread at no lower mean MIS.
    """
    if paper not in by_variant:
        return []
    default_model = model_of(by_variant[paper])
    papers = {v: paper if model_of(by_variant[v]) == default_model
              else plain_variant("csg", model_of(by_variant[v]), by_variant)
              for v in by_variant if not v.startswith("std")}  # fmt: skip
    rivals = [v for v, theirs in papers.items() if theirs not in (None, v)]
    if not rivals:
        return []
    lines = ["", f"### Against the paper's method ({paper}), at the same seeds", "",
             "| variant | paper's method | seeds | MIS ratio vs paper | Δacc vs paper (pt) | "
             "all MIS > paper's | all acc > paper's | wins |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for variant in rivals:
        seeds, ours, theirs = at_common_seeds(by_variant[variant], by_variant[papers[variant]])
        if not seeds:
            continue
        ratio = _mean(ours, "mis") / _mean(theirs, "mis")
        delta = 100 * (_mean(ours, "accuracy") - _mean(theirs, "accuracy"))
        mis_above = min(m["mis"] for m in ours) > max(m["mis"] for m in theirs)
        acc_above = min(m["accuracy"] for m in ours) > max(m["accuracy"] for m in theirs)
        wins = (mis_above and delta >= 0) or (acc_above and ratio >= 1)
        lines.append(
            f"| {variant} | {papers[variant]} | {','.join(map(str, seeds))} | {ratio:.3f} | "
            f"{delta:+.2f} | "
            f"{'yes' if mis_above else 'no'} | {'yes' if acc_above else 'no'} | "
            f"{'**yes**' if wins else 'no'} |"
        )
    return lines


#: The localization metrics averaged over seeds, and which of them are rates shown in %.
LOCALIZATION_METRICS: dict[str, str] = {
    "gt_known_loc": "GT-known Loc", "top1_loc": "Top-1 Loc", "max_box_acc_v2": "MaxBoxAcc v2",
    "mask_iou": "mask IoU", "energy_pointing": "energy PG",
}  # fmt: skip
LOCALIZATION_PERCENT: frozenset[str] = frozenset({"gt_known_loc", "top1_loc", "max_box_acc_v2"})


def _interval(comparison: dict, digits: int = 1) -> str:
    low, high = comparison["interval_points"]
    difference = comparison["difference_points"]
    return f"{difference:+.{digits}f} ({low:+.{digits}f} … {high:+.{digits}f})"


def localization_tables(protocol: str, results_root: Path | None = None) -> str:
    """Tables of experiments/localization_full.py's results in ``results/<protocol>/``.

    Per seed: scene accuracy of both models, the CSG gate's L1-density, GT-known Loc (%) of every
    ``model/method`` (thresholds chosen on val), the best CSG-side method minus the best other with
    its paired bootstrap 95 % interval, filter AP. Then, per ``model/method``, the means over the
    seeds of GT-known / Top-1 Loc, MaxBoxAcc v2, mask IoU and the energy pointing game; and, when
    ``pooled.json`` holds more than one seed, the pooled comparison; when it holds
    ``against_paper`` (a gated variant's folder), :func:`against_paper_table`. The gated model is
    keyed ``csg`` whatever its variant; a variant other than the paper's (``--gated own01``) is
    named in the first title.

    Args:
        protocol: ``localization/<name>``, the folder under ``results_root``.
        results_root: where the protocols' folders are (default ``experiments/results``).

    Returns:
        The Markdown.
    """
    folder = (results_root or HERE / "results") / protocol
    seeds = sorted(folder.glob("s*.json"), key=lambda p: int(p.stem[1:]))
    results = [json.loads(path.read_text()) for path in seeds]
    if not results:
        raise SystemExit(f"no seed JSON in experiments/results/{protocol}/ yet")
    # The ``model/method`` columns every seed scored, in the order the script wrote them.
    keys = [k for k in results[0]["hits"] if all(k in r["hits"] for r in results)]

    def method(result: dict, key: str) -> dict:
        model, name = key.split("/", 1)
        return result["models"][model]["methods"][name]

    variants = sorted({r.get("gated_variant", "csg") for r in results})
    if len(variants) > 1:
        raise SystemExit(f"experiments/results/{protocol}/ mixes gated variants {variants}")
    title = f"### GT-known Loc per seed ({protocol}, %)"
    if variants != ["csg"]:  # the model keyed ``csg`` is not the paper's alternation: say so
        title = f"### GT-known Loc per seed ({protocol}, gated model `{variants[0]}`, %)"
    lines = [title, "",
             "| seed | scene acc CSG / STD | L1-density | " + " | ".join(f"`{k}`" for k in keys)
             + " | best CSG-side − best other (95 % CI) | filter AP CSG / STD |",
             "|---" * (len(keys) + 5) + "|"]  # fmt: skip
    for r in results:
        acc = " / ".join(f"{r['models'][m]['test_accuracy']:.4f}" for m in ("csg", "std"))
        cells = " | ".join(f"{100 * method(r, k)['gt_known_loc']:.1f}" for k in keys)
        c = r["comparison"]
        lines.append(
            f"| {r['seed']} | {acc} | {r['models']['csg']['gate_density']:.3f} | {cells} | "
            f"`{c['csg_side']['method']}` − `{c['other']['method']}`: {_interval(c)} | "
            f"{r['filter_ap']['csg']:.3f} / {r['filter_ap']['std']:.3f} |"
        )
    names = LOCALIZATION_METRICS
    seed_list = ",".join(str(r["seed"]) for r in results)
    lines += ["", f"### Means over seeds {seed_list} ({protocol})", "",
              "| model/method | val thr. | " + " | ".join(names.values()) + " |",
              "|---" * (len(names) + 2) + "|"]  # fmt: skip
    for key in keys:
        means = {n: sum(method(r, key)[n] for r in results) / len(results)
                 for n in ("threshold", *names)}  # fmt: skip
        cells = " | ".join(
            f"{100 * means[n]:.1f}" if n in LOCALIZATION_PERCENT else f"{means[n]:.3f}"
            for n in names
        )
        lines.append(f"| `{key}` | {means['threshold']:.2f} | {cells} |")
    pooled_path = folder / "pooled.json"
    if pooled_path.exists():
        pooled = json.loads(pooled_path.read_text())
        if len(pooled["seeds"]) > 1:
            c = pooled["comparison"]
            lines += ["", f"Pooled over seeds {','.join(map(str, pooled['seeds']))} (per image, the "
                      f"hits averaged over the seeds): `{c['csg_side']['method']}` − "
                      f"`{c['other']['method']}` {_interval(c)} points GT-known Loc."]  # fmt: skip
        if "against_paper" in pooled:
            lines += against_paper_table(protocol, pooled["against_paper"])
    return "\n".join(lines) + "\n"


def against_paper_table(protocol: str, against: dict) -> list[str]:
    """Lines of a gated variant's network against the paper's CSG network (``against_paper`` of
    localization_full.py's ``pooled.json``): GT-known Loc of every method on both networks, the
    difference with its paired bootstrap interval, and the scene accuracies."""
    variant, seeds = against["variant"], ",".join(map(str, against["seeds"]))
    accuracy = {side: sum(acc) / len(acc) for side, acc in against["test_accuracy"].items()}
    lines = ["", f"### The `{variant}` network against the paper's CSG network ({protocol}, "
             f"seeds {seeds})", "",
             f"| method | `{variant}` | paper's `csg` | `{variant}` − `csg` (95 % CI) |",
             "|---|---|---|---|",
             f"| scene accuracy | {accuracy['variant']:.4f} | {accuracy['paper']:.4f} | "
             f"{100 * (accuracy['variant'] - accuracy['paper']):+.1f} points |"]  # fmt: skip
    for key, row in against["methods"].items():  # 2 decimals: hit rates over 2000 scenes are
        # multiples of 0.05 %, which 1 decimal rounds unevenly
        lines.append(f"| `{key}` | {100 * row['variant']:.2f} | {100 * row['paper']:.2f} | "
                     f"{_interval(row, 2)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="main")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    text = build_tables(args.protocol)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
