"""The filter atlas of a run: for every filter of the gated layer, the images of a split that
activate it most (pooled activation) and the region where it fires (its upsampled map above the
filter's threshold t_k from the validation split), next to its gate column, its MI column and,
where the data set has object masks (scenes, voc-part), its per-filter localization score.

Writes RUN_DIR/atlas.json (indices, scores, boxes, gate and MI rows -- no pixels) and a
self-contained RUN_DIR/atlas.html (one section per class, a card per filter, an index with a
search box that works offline). --baseline adds the STD twin's atlas (through its MI-derived
gate) on the same images. The MI matrix comes from RUN_DIR/metrics.json when `csg-interp
evaluate` wrote one for this checkpoint, else from --mi-images validation images.

Example: csg-interp atlas runs/csg --baseline runs/std --top-k 9
"""

from __future__ import annotations

import argparse

HELP = "every filter's top images and regions, its gate and MI class (atlas.json + atlas.html)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--baseline", metavar="RUN", default=None,
                        help="a second run (usually the STD twin) atlased on the same images")
    parser.add_argument("--split", default="test", choices=["val", "test"],
                        help="the images the atlas is made of")
    parser.add_argument("--top-k", type=int, default=9, help="images per filter")
    parser.add_argument("--min-gate", type=float, default=0.5,
                        help="a filter serves class c when G[c, k] >= this")
    parser.add_argument("--threshold-images", type=int, default=2000,
                        help="validation images for the thresholds t_k")
    parser.add_argument("--mi-images", type=int, default=2000,
                        help="validation images for the MI matrix when metrics.json has none")
    parser.add_argument("--jobs", type=int, default=-1, help="workers for the MI matrix")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--data-root", default=None, help="the data set's folder, if it moved")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=None,
                        help="folder for atlas.json and atlas.html (default RUN_DIR)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from csg_interp.report.atlas_page import write_atlas_html
    from csg_interp.workflows.atlas import atlas_run

    result = atlas_run(
        args.run_dir, baseline=args.baseline, split=args.split, top_k=args.top_k,
        min_gate=args.min_gate, threshold_images=args.threshold_images,
        mi_images=args.mi_images, checkpoint=args.checkpoint, device=args.device,
        data_root=args.data_root, batch_size=args.batch_size, n_jobs=args.jobs,
        progress=not getattr(args, "no_progress", False),
    )  # fmt: skip
    folder = Path(args.out) if args.out else Path(args.run_dir)
    json_path = result.save(folder)
    html_path = write_atlas_html(result, folder / "atlas.html")
    print(result.summary())
    size = html_path.stat().st_size / 1e6
    print(f"wrote {json_path} and {html_path} ({size:.2f} MB)")
    return 0
