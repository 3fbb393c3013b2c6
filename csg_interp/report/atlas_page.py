"""``atlas.html``: the filter atlas of a run as one self-contained page.

One section per class holds the cards of the filters the gate assigns to it (``argmax_c G``);
a card shows the filter's top images with the region where its upsampled map exceeds t_k
outlined in red, and its numbers (gate and MI columns, localization score where the data set has
masks). A compact index lists every filter; a search box (inline JavaScript, no network) filters
the index and the cards. Without JavaScript the page reads the same, minus the search box. Images
are PNG data URIs (``torchvision.io.encode_png``); the page references no external URL.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._utils import format_value, write_text_atomic
from ..training.gate import class_filters

__all__ = ["write_atlas_html", "render_atlas_html", "atlas_strip_png"]

_CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 1.6em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { border: 1px solid #ccc; border-radius: 4px; padding: 0.4em 0.6em; max-width: 100%;
        box-sizing: border-box; flex: 0 1 36em; }
.card h3 { margin: 0.2em 0; font-size: 1em; }
figure { margin: 0.3em 0; max-width: 100%; } figure img { max-width: 100%; height: auto;
         image-rendering: pixelated; border: 1px solid #ddd; }
figcaption, .note { font-size: 0.8em; color: #555; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.3em 0; }
th, td { border: 1px solid #ddd; padding: 1px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.index { max-width: 100%; overflow-x: auto; } nav a { margin-right: 0.8em; }
#atlas-search { font-size: 1em; padding: 0.3em; width: 20em; max-width: 100%; }
"""

_SCRIPT = """<script>
(function () {
  var box = document.getElementById("atlas-search");
  document.getElementById("atlas-search-box").hidden = false;
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll("[data-search]").forEach(function (el) {
      var tokens = el.getAttribute("data-search").split(" ");
      var shown = words.every(function (w) {
        return tokens.some(function (t) {
          return t === w || (!/[0-9]/.test(w) && t.indexOf(w) >= 0);
        });
      });
      el.style.display = shown ? "" : "none";
    });
  });
})();
</script>"""


def _outline(region: Tensor) -> Tensor:
    """The boundary pixels of a bool (H, W) region (inside, with an outside 4-neighbour)."""
    padded = F.pad(region[None, None].float(), (1, 1, 1, 1), value=0.0)
    eroded = -F.max_pool2d(-padded, 3, stride=1)[0, 0] > 0.5
    return region & ~eroded


def atlas_strip_png(atlas: Any, images: dict[int, Tensor], k: int, max_width: int = 560) -> bytes:
    """Filter ``k``'s top images as one PNG, the t_k region outlined in red.

    Args:
        atlas: a :class:`~csg_interp.attribution.FilterAtlas` with its ``maps``.
        images: data-set index → image (C, H, W) in [0, 1].
        k: the filter.
        max_width: the strip is wrapped into rows at most this many pixels wide.

    Returns:
        PNG bytes.
    """
    from torchvision.io import encode_png
    from torchvision.utils import make_grid

    from ..attribution.boxes import upsample_maps

    height, width = atlas.image_size
    scale = max(1, 64 // max(height, width))
    keep = [j for j in range(atlas.top_k) if int(atlas.indices[k, j]) >= 0]
    if not keep:
        raise ValueError(f"filter {k} has no images in the atlas")
    maps = atlas.maps[k, keep]
    region = upsample_maps(maps, (height, width)) >= float(atlas.thresholds[k])
    tiles = []
    for row, j in enumerate(keep):
        image = images[int(atlas.indices[k, j])].float()
        rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
        rgb = F.interpolate(rgb[None], scale_factor=scale, mode="nearest")[0]
        edge = F.interpolate(_outline(region[row])[None, None].float(), scale_factor=scale,
                             mode="nearest")[0, 0] > 0.5  # fmt: skip
        rgb = rgb.clone()
        rgb[0][edge], rgb[1][edge], rgb[2][edge] = 1.0, 0.0, 0.0
        tiles.append(rgb)
    per_row = max(1, min(len(tiles), max_width // (width * scale + 2)))
    grid = make_grid(torch.stack(tiles), nrow=per_row, padding=2, pad_value=1.0)
    return bytes(encode_png((grid * 255).round().clamp(0, 255).to(torch.uint8)).numpy())


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _name(atlas: Any, c: int) -> str:
    return atlas.class_names[c] if 0 <= c < len(atlas.class_names) else str(c)


def _top_values(row: list[float], atlas: Any, count: int = 3) -> str:
    order = sorted(range(len(row)), key=lambda c: (-row[c], c))[:count]
    return ", ".join(f"{_name(atlas, c)} {row[c]:.3g}" for c in order)


def _card(atlas: Any, images: dict[int, Tensor], k: int, prefix: str, split: str) -> str:
    record = atlas.filter_record(k)
    esc = html.escape
    gate_class = record.get("gate_class")
    mi_class = record.get("mi_class")
    words = [f"filter {k}", f"f{k}"]
    if gate_class is not None:
        words.append(_name(atlas, gate_class))
    if mi_class is not None:
        words.append(_name(atlas, mi_class))
    caption = (
        f"Filter {k}: its {len(record['top'])} {split} images with the largest pooled activation, "
        f"best first; red outline: where the upsampled map is at least t_k = "
        f"{record['threshold']:.3g}. Listed below, in the same order: data-set index "
        "(label→prediction) and pooled activation."
    )
    rows = []
    if gate_class is not None:
        rows.append(("gate class", f"{_name(atlas, gate_class)} (G = {record['gate_max']:.2f})",
                     _top_values(record["gate_row"], atlas)))  # fmt: skip
    if mi_class is not None:
        rows.append(("MI class", f"{_name(atlas, mi_class)} ({record['mi_max']:.3g} nats)",
                     _top_values(record["mi_row"], atlas)))  # fmt: skip
    if "localization_score" in record:
        rows.append(("localization", f"{record['localization_score']:.3f} hit rate",
                     f"on {_name(atlas, record['localization_class'])}, mean IoU "
                     f"{record['localization_iou']:.3f}"))  # fmt: skip
    table = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>"
                    for a, b, c in rows)  # fmt: skip
    examples = ", ".join(
        f"#{e['index']} ({_name(atlas, e['label']) if e['label'] >= 0 else '?'}→"
        f"{_name(atlas, e['predicted'])}) {e['score']:.3g}"
        for e in record["top"]
    )
    uri = _uri(atlas_strip_png(atlas, images, k))
    return (
        f'<article class="card" id="{prefix}f{k}" data-search="{esc(" ".join(words).lower())}">'
        f"<h3>filter {k}</h3><figure><img src=\"{uri}\" alt=\"{esc(caption)}\">"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
        f'<p class="note">{esc(examples)}</p><table>{table}</table></article>'
    )


def _links(filters: list[int], prefix: str, matrix: Any, c: int) -> str:
    if not filters:
        return "none"
    return ", ".join(
        f'<a href="#{prefix}f{k}">{k}</a> ({float(matrix[c, k]):.2g})' for k in filters
    )


def _model_part(atlas: Any, images: dict[int, Tensor], prefix: str, title: str,
                split: str) -> tuple[str, list[tuple[str, str]]]:  # fmt: skip
    esc = html.escape
    by = "gate" if atlas.gate is not None else "mi"
    parts = [f'<h2 id="{prefix}top">{esc(title)}</h2>']
    info = atlas.info
    parts.append(
        f'<p class="note">{atlas.num_filters} filters × top {atlas.top_k} of {atlas.num_images} '
        f"{esc(split)} images. Gate: {esc(str(info.get('gate', 'given')))}. MI: "
        f"{esc(str(info.get('mi', 'given')))}. Thresholds t_k: "
        f"{esc(str(info.get('thresholds', 'given')))}. A filter serves class c by the gate when "
        f"G[c, k] ≥ {atlas.min_gate:g}, by MI when argmax_c M[c, k] = c. Each card sits under "
        f"the class its {'gate' if by == 'gate' else 'MI column'} assigns it (argmax).</p>"
    )
    if atlas.localization is not None:
        parts.append(
            f'<p class="note">Per-filter localization (the CSG paper\'s protocol: map ≥ t_k vs '
            f"the object mask, a hit when IoU &gt; {atlas.localization['iou_threshold']:g}): "
            f"AP {atlas.localization['ap']:.3f}.</p>"
        )
    # The index of every filter.
    head = ["filter", "gate class", "G", "MI class", "MI (nats)", "top score"]
    if atlas.localization is not None:
        head.append("loc. score")
    rows = []
    for k in range(atlas.num_filters):
        record = atlas.filter_record(k)
        cells = [f'<a href="#{prefix}f{k}">{k}</a>']
        words = [f"filter {k}", f"f{k}"]
        for name in ("gate", "mi"):
            if f"{name}_class" in record:
                label = _name(atlas, record[f"{name}_class"])
                cells += [esc(label), esc(format_value(record[f"{name}_max"], 3))]
                words.append(label)
            else:
                cells += ["–", "–"]
        top = record["top"][0]["score"] if record["top"] else None
        cells.append(esc(format_value(top, 3)))
        if atlas.localization is not None:
            cells.append(esc(format_value(record["localization_score"], 3)))
        rows.append(f'<tr data-search="{esc(" ".join(words).lower())}">'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")  # fmt: skip
    parts.append(
        f'<h3 id="{prefix}index">Index of all filters</h3><div class="index"><table><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>"
    )  # fmt: skip
    nav = [(f"{prefix}index", f"{title}: index")]
    for c in range(atlas.num_classes):
        anchor = f"{prefix}c{c}"
        nav.append((anchor, _name(atlas, c)))
        parts.append(f'<h3 id="{anchor}">{esc(title)} — class {esc(_name(atlas, c))}</h3>')
        served = []
        for name, matrix in (("gate", atlas.gate), ("MI", atlas.mi)):
            if matrix is not None:
                filters = atlas.filters_of(c, "gate" if name == "gate" else "mi")
                served.append(f"by {name}: {_links(filters, prefix, matrix, c)}")
        parts.append(f'<p class="note">Filters that serve it, strongest first — '
                     f"{'; '.join(served)}.</p>")  # fmt: skip
        # The cards: the filters assigned to c (argmax), strongest first.
        own = [int(k) for k in class_filters(atlas.gate if by == "gate" else atlas.mi, c)]
        if not own:
            parts.append('<p class="note">No filter is assigned to this class.</p>')
            continue
        parts.append('<div class="cards">'
                     + "".join(_card(atlas, images, k, prefix, split) for k in own)
                     + "</div>")  # fmt: skip
    return "\n".join(parts), nav


def render_atlas_html(result: Any, title: str | None = None) -> str:
    """The complete ``atlas.html`` document of a :class:`~csg_interp.workflows.atlas.AtlasResult`.

    Raises:
        ValueError: a result without its images or maps (one loaded from ``atlas.json``:
            pixels are not saved; recompute it with
            :func:`~csg_interp.workflows.atlas.atlas_run`).
    """
    if not result.images.get("run") or result.atlas.maps.shape[1] == 0:
        raise ValueError(
            "this AtlasResult has no images or maps (atlas.json holds no pixels); compute it "
            "with atlas_run(run_dir) to render the page"
        )
    esc = html.escape
    title = title or f"Filter atlas — {Path(result.run_dir).name}"
    models = [("m-", "This run", result.atlas, result.images["run"])]
    if result.baseline is not None:
        kind = "MI-derived gate" if result.baseline.info.get("kind") == "std" else "learned gate"
        heading = f"Baseline {Path(result.baseline_dir).name} ({kind})"
        models.append(("b-", heading, result.baseline, result.images["baseline"]))
    bodies, navs = [], []
    for prefix, heading, atlas, images in models:
        body, nav = _model_part(atlas, images, prefix, heading, result.split)
        bodies.append(body)
        navs.append(nav)
    nav_html = "".join(
        "<p>" + " ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav) + "</p>" for nav in navs
    )
    intro = (
        "Every filter of the gated layer through its dataset examples: the images that activate "
        "it most (pooled activation, ties to the lower index) and the region where it fires, "
        "next to the class the gate assigned it and the class it is most informative about. "
        "Numbers, indices and boxes are in atlas.json beside this page."
    )
    search = (
        '<p id="atlas-search-box" hidden><label for="atlas-search">Show only the cards and '
        'index rows matching every word (part of a class name, or a filter: "f12"): </label>'
        '<input id="atlas-search" type="search" placeholder="class name or filter number"></p>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>{esc(intro)}</p><nav>{nav_html}</nav>{search}"
        + "\n".join(bodies) + _SCRIPT + "</body></html>\n"
    )


def write_atlas_html(
    result: Any, path: str | os.PathLike | None = None, title: str | None = None
) -> Path:
    """Write ``atlas.html`` atomically: a failed write leaves the previous page, no partial file.

    Args:
        result: an :class:`~csg_interp.workflows.atlas.AtlasResult` with its images.
        path: the file (default ``RUN_DIR/atlas.html``); its folder is created if needed.
        title: the page title (default: the run directory's name).

    Returns:
        The path written.
    """
    path = Path(path) if path is not None else Path(result.run_dir) / "atlas.html"
    return write_text_atomic(path, render_atlas_html(result, title))
