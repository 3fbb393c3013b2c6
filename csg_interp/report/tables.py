"""JSON documents as report tables: nested values flattened to ``a.b.c`` keys, lists of records
as tables of their own.

Pure functions (JSON in, rows out): :mod:`~csg_interp.report.render` lays them out and
:mod:`~csg_interp.report.build` re-exports them, so neither of those two imports the other back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten_metrics", "json_tables"]

#: Lists up to this long are shown in full; longer ones are summarised by their length.
_MAX_LIST = 12


def _scalar_list(values: list[Any]) -> str:
    """A list of scalars as one cell: joined (floats to 4 significant digits) when short.

    Args:
        values: ints, floats, strings, booleans or ``None``.

    Returns:
        ``"1, 0.5, a"``, or ``"(N values)"`` for a list longer than ``_MAX_LIST``.
    """
    if len(values) <= _MAX_LIST:
        return ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)
    return f"({len(values)} values)"


def flatten_metrics(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON → ``{"a.b.c": scalar}``; short lists are joined, long ones summarised.

    Args:
        values: a parsed JSON value (mappings, lists, scalars).
        prefix: the key of ``values`` itself (``""`` at the top).

    Returns:
        One entry per leaf: its dotted key (``[i]`` for a record of a list) and its value.

    Example:
        >>> flatten_metrics({"csg": {"acc": 0.9, "per_class": [1, 2]}, "n": 3})
        {'csg.acc': 0.9, 'csg.per_class': '1, 2', 'n': 3}
    """
    flat: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for key, value in values.items():
            flat.update(flatten_metrics(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(values, list):
        if values and all(isinstance(v, (int, float, str, bool)) or v is None for v in values):
            flat[prefix] = _scalar_list(values)
        elif values and all(isinstance(v, Mapping) for v in values) and len(values) <= _MAX_LIST:
            for index, value in enumerate(values):
                flat.update(flatten_metrics(value, f"{prefix}[{index}]"))
        else:
            flat[prefix] = f"({len(values)} items)"
    else:
        flat[prefix or "value"] = values
    return flat


def _cell(value: Any) -> Any:
    """A table cell from a JSON value: scalars as they are, lists summarised."""
    if isinstance(value, list):
        if all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
            return _scalar_list(value)
        if all(isinstance(v, Mapping) and v for v in value) and len(value) <= _MAX_LIST:
            # e.g. the fired filters of an explanation: their first field, joined
            first = next(iter(value[0]))
            return ", ".join(str(v.get(first)) for v in value)
        return f"({len(value)} items)"
    if isinstance(value, Mapping):
        return f"({len(value)} fields)"
    return value


def _is_record(value: Any) -> bool:
    """A mapping whose values are scalars or lists (one table row)."""
    return isinstance(value, Mapping) and bool(value) and not any(
        isinstance(v, Mapping) for v in value.values()
    )


def json_tables(values: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Tables for a JSON document: one of its scalar fields (``name``/``value``), one per list of
    records, and one per mapping of records (its keys become the first column).

    Args:
        values: a parsed JSON document.

    Returns:
        ``(title, rows)`` pairs, the scalar fields' table (``"values"``) first.

    Example:
        >>> doc = {"n": 2, "rows": [{"auc": 0.9}, {"auc": 0.8}], "models": {"a": {"acc": 1.0}}}
        >>> [(title, len(rows)) for title, rows in json_tables(doc)]
        [('values', 1), ('rows', 2), ('models', 1)]
    """
    scalars: dict[str, Any] = {}
    tables: list[tuple[str, list[dict[str, Any]]]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            if value and all(_is_record(v) for v in value.values()):
                tables.append((path or "values", [{"": key, **{k: _cell(v) for k, v in row.items()}}
                                                  for key, row in value.items()]))
                return
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            rows = [{k: _cell(v) for k, v in row.items()} for row in value]
            tables.append((path or "values", rows))
        else:
            scalars[path or "value"] = _cell(value)

    walk(values, "")
    if scalars:
        tables.insert(0, ("values", [{"name": k, "value": v} for k, v in scalars.items()]))
    return tables
