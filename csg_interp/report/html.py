"""A small self-contained HTML document: sections, tables and base64-embedded figures.

Everything goes into one file: the CSS is inline and figures are ``data:image/png;base64`` URIs,
so the report opens offline, can be mailed or attached to a CI run, and references no external URL.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._utils import format_value  # the one table-cell format, re-exported here

__all__ = ["HtmlReport", "figure_to_data_uri", "image_file_to_data_uri", "format_value"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222;
       padding: 0 1em; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 1.8em; }
h3 { margin-bottom: 0.3em; }
nav { margin: 0.5em 0 1em; } nav a { margin-right: 1em; white-space: nowrap; }
.table-wrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
td { overflow-wrap: anywhere; }
figure { display: block; margin: 0.8em 0 1.2em; max-width: 100%; break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.88em; color: #333; max-width: 60em; margin-top: 0.3em; }
.note { color: #666; font-size: 0.9em; }
.computed { color: #555; font-size: 0.85em; margin-top: -0.4em; }
.stale { background: #fff3cd; border-left: 4px solid #d39e00; padding: 0.4em 0.8em; }
.card { border: 1px solid #bbb; border-radius: 6px; padding: 0.2em 1em 0.6em; background: #fafafa; }
.card table { width: 100%; font-size: 0.9em; }
.card td, .card th { text-align: left; } .card td.value { white-space: nowrap; }
.card .meaning { color: #555; }
.verdict { font-weight: bold; white-space: nowrap; }
.pass { color: #1a7f37; } .fail { color: #b3261e; } .none { color: #777; }
details { margin: 0.5em 0; } summary { cursor: pointer; font-weight: 600; }
@media print {
  nav { display: none; } body { max-width: none; margin: 0; }
  h2 { break-after: avoid; } .table-wrap { overflow: visible; }
}
"""
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def figure_to_data_uri(figure: Any, dpi: int = 100, close: bool = True) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI.

    Args:
        figure: a matplotlib ``Figure``.
        dpi: resolution.
        close: close the figure afterwards (frees its memory).

    Returns:
        The data URI.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_file_to_data_uri(path: Any) -> str:
    """A PNG or JPEG file as a data URI.

    Raises:
        ValueError: for another file type.
    """
    from pathlib import Path

    path = Path(path)
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path.name}: only {', '.join(_IMAGE_TYPES)} images can be embedded")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@dataclass
class HtmlReport:
    """An HTML document built section by section.

    Args:
        title: the page title.

    Attributes:
        figures: the captions of every embedded image, in order (one ``<img>`` each).

    Example:
        >>> report = HtmlReport("run")
        >>> report.section("Metrics")
        >>> report.table([{"name": "acc", "value": 0.91}])
        >>> "<table>" in report.render()
        True
    """

    title: str
    figures: list[str] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list)
    _sections: list[tuple[str, str]] = field(default_factory=list)

    def section(self, heading: str, computed: str | None = None) -> None:
        """Start a new section (``<h2>``, listed in the page's navigation).

        Args:
            heading: the heading.
            computed: a line saying when and how the section's data was computed.
        """
        anchor = f"s{len(self._sections) + 1}"
        self._sections.append((anchor, heading))
        self._parts.append(f'<h2 id="{anchor}">{html.escape(heading)}</h2>')
        if computed:
            self._parts.append(f'<p class="computed">{html.escape(computed)}</p>')

    def stale(self, text: str) -> None:
        """A highlighted warning: what follows (or what was left out) is not current."""
        self._parts.append(f'<p class="stale">{html.escape(text)}</p>')

    def card(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The summary card: rows of ``name``, ``value``, ``meaning``, ``verdict``
        (``True`` pass, ``False`` fail, ``None`` no verdict, or a string) and ``computed``."""
        body = []
        for row in rows:
            verdict = row.get("verdict")
            if isinstance(verdict, str):
                css, text = "none", verdict
            else:
                css, text = {True: ("pass", "pass"), False: ("fail", "fail")}.get(
                    verdict, ("none", "–"))
            body.append(
                f"<tr><th scope=\"row\">{html.escape(str(row['name']))}</th>"
                f"<td class=\"value\">{html.escape(str(row['value']))}</td>"
                f"<td class=\"verdict {css}\">{html.escape(text)}</td>"
                f"<td class=\"meaning\">{html.escape(str(row.get('meaning', '')))}"
                + (f"<br><span class=\"note\">{html.escape(str(row['computed']))}</span>"
                   if row.get("computed") else "")
                + "</td></tr>"
            )
        head = "<tr><th>quantity</th><th>value</th><th>verdict</th><th>what it means</th></tr>"
        self._parts.append(f'<div class="card"><table><thead>{head}</thead><tbody>'
                           + "".join(body) + "</tbody></table></div>")

    def open_details(self, summary: str) -> None:
        """Fold what follows (until :meth:`close_details`) in a closed ``<details>``."""
        self._parts.append(f"<details><summary>{html.escape(summary)}</summary>")

    def close_details(self) -> None:
        self._parts.append("</details>")

    def subheading(self, text: str) -> None:
        self._parts.append(f"<h3>{html.escape(text)}</h3>")

    def paragraph(self, text: str, note: bool = False) -> None:
        css = ' class="note"' if note else ""
        self._parts.append(f"<p{css}>{html.escape(text)}</p>")

    def link(self, text: str, target: str, after: str = "") -> None:
        """A paragraph linking to a file beside the report (a relative name, never a URL).

        Raises:
            ValueError: for a URL or an absolute path (the report references no external URL).
        """
        if ":" in target or target.startswith(("/", "\\")):
            raise ValueError(f"links must be relative file names beside the report, got {target!r}")
        self._parts.append(f'<p><a href="{html.escape(target, quote=True)}">{html.escape(text)}'
                           f"</a>{html.escape(after)}</p>")

    def figure(self, source: Any, caption: str, dpi: int = 100) -> None:
        """Embed a matplotlib figure (closed afterwards) or a data URI, with a caption."""
        uri = source if isinstance(source, str) else figure_to_data_uri(source, dpi=dpi)
        if not uri.startswith("data:image/"):
            raise ValueError("figures must be matplotlib figures or data:image URIs (no links)")
        self.figures.append(caption)
        self._parts.append(
            f'<figure><img src="{uri}" alt="{html.escape(caption, quote=True)}" '
            f'data-figure="{len(self.figures)}"><figcaption>{html.escape(caption)}</figcaption>'
            "</figure>"
        )

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        collapsed: str | None = None,
    ) -> None:
        """A table of dict rows (``columns``: which keys, default the first row's).

        Args:
            rows: the rows.
            columns: the columns to show, in order.
            collapsed: put the table in a closed ``<details>`` with this summary text.
        """
        if not rows:
            self.paragraph("(empty table)", note=True)
            return
        columns = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(format_value(row.get(c)))}</td>" for c in columns)
            + "</tr>"
            for row in rows
        )
        table = (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
                 f"<tbody>{body}</tbody></table></div>")
        if collapsed:
            table = f"<details><summary>{html.escape(collapsed)}</summary>{table}</details>"
        self._parts.append(table)

    def render(self) -> str:
        """The complete document."""
        nav = " ".join(
            f'<a href="#{anchor}">{html.escape(heading)}</a>' for anchor, heading in self._sections
        )
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><nav>{nav}</nav>"
            + "\n".join(self._parts)
            + "</body></html>\n"
        )
