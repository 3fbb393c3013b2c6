"""The filter table: which filter serves which class, by the gate and by mutual information.

One row per filter ``k`` of the gated layer:

============  ===========================================================================
column        meaning
============  ===========================================================================
filter        k
gate_class    ``argmax_c G[c, k]`` (empty for a model without gate)
gate_value    ``G[gate_class, k]`` (1.0 after the ``max`` projection)
open_classes  number of classes with ``G[c, k] >= 0.5``
mi_class      ``argmax_c M[c, k]``
mi_max        ``M[mi_class, k]`` in nats
agree         ``gate_class == mi_class``
gate:<name>   ``G[c, k]`` for every class
mi:<name>     ``M[c, k]`` for every class
============  ===========================================================================

``gate_class``/``mi_class`` hold class indices; ``*_name`` columns hold their names.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csg_interp._utils.io import atomic_writer, write_text_atomic

from .scores import _check_matrix

__all__ = ["FilterTable", "filter_table"]

OPEN_THRESHOLD = 0.5


@dataclass
class FilterTable:
    """Rows of the filter table (see the module docstring) and the class names they use."""

    rows: list[dict[str, Any]]
    class_names: list[str]
    columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def filters_of(self, cls: int, by: str = "gate") -> list[int]:
        """Filters assigned to class ``cls`` by ``"gate"`` or ``"mi"``."""
        if by not in ("gate", "mi"):
            raise ValueError(f"by must be 'gate' or 'mi', got {by!r}")
        return [row["filter"] for row in self.rows if row[f"{by}_class"] == cls]

    def counts(self, by: str = "mi") -> list[int]:
        """Number of filters per class, assigned by ``"gate"`` or ``"mi"``."""
        return [len(self.filters_of(c, by)) for c in range(len(self.class_names))]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV (one row per filter); returns the path."""
        path = Path(path)
        with atomic_writer(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return path

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write ``{"class_names": [...], "columns": [...], "rows": [...]}``; returns the path."""
        path = Path(path)
        payload = {"class_names": self.class_names, "columns": self.columns, "rows": self.rows}
        return write_text_atomic(path, json.dumps(payload, indent=1))


def filter_table(
    matrix: np.ndarray | Tensor,
    gate: Tensor | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    decimals: int = 6,
) -> FilterTable:
    """Build the filter table from an MI matrix and, for a CSG model, its gate.

    Args:
        matrix: C×K MI matrix (classes × filters).
        gate: C×K gate, or ``None`` for an STD model (gate columns are left empty).
        class_names: C names; default ``"0"``, ``"1"``, ...
        decimals: rounding of the float columns.

    Returns:
        A :class:`FilterTable`.

    Example:
        >>> table = filter_table(np.array([[0.3, 0.0], [0.1, 0.2]]), torch.tensor([[1.0, 0.1], [0.2, 1.0]]),
        ...                      class_names=["cat", "dog"])
        >>> [(r["filter"], r["gate_class_name"], r["mi_class_name"], r["agree"]) for r in table.rows]
        [(0, 'cat', 'cat', True), (1, 'dog', 'dog', True)]
    """
    array = _check_matrix(matrix)
    num_classes, num_filters = array.shape
    names = [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} class names for an MI matrix with {num_classes} classes")
    gate_array = None
    if gate is not None:
        gate_array = _check_matrix(gate, "gate")
        if gate_array.shape != array.shape:
            raise ValueError(f"gate {gate_array.shape} and MI matrix {array.shape} differ in shape")
    mi_class = array.argmax(axis=0)
    gate_class = (
        torch.as_tensor(gate_array).argmax(dim=0).numpy() if gate_array is not None else None
    )
    columns = ["filter", "gate_class", "gate_class_name", "gate_value", "open_classes",
               "mi_class", "mi_class_name", "mi_max", "agree"]
    columns += [f"gate:{n}" for n in names] + [f"mi:{n}" for n in names]
    rows = []
    for k in range(num_filters):
        row: dict[str, Any] = {"filter": k}
        if gate_array is not None and gate_class is not None:
            g = int(gate_class[k])
            row.update(
                gate_class=g,
                gate_class_name=names[g],
                gate_value=round(float(gate_array[g, k]), decimals),
                open_classes=int((gate_array[:, k] >= OPEN_THRESHOLD).sum()),
            )
        else:
            row.update(gate_class=None, gate_class_name=None, gate_value=None, open_classes=None)
        m = int(mi_class[k])
        row.update(
            mi_class=m,
            mi_class_name=names[m],
            mi_max=round(float(array[m, k]), decimals),
            agree=None if gate_class is None else bool(int(gate_class[k]) == m),
        )
        for c, name in enumerate(names):
            row[f"gate:{name}"] = (
                None if gate_array is None else round(float(gate_array[c, k]), decimals)
            )
        for c, name in enumerate(names):
            row[f"mi:{name}"] = round(float(array[c, k]), decimals)
        rows.append(row)
    return FilterTable(rows=rows, class_names=names, columns=columns)
