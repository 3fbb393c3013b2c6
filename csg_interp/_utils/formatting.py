"""One number format for every table the package prints or renders (terminal and HTML)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_value"]


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: ``None`` as an en dash, booleans as ``yes`` / ``no``, floats to ``digits``.

    Floats print with ``digits`` decimals; one below 1e-3 or at least 1e4 in magnitude (zero
    included) prints with ``digits`` significant digits instead, so a small learning rate or a
    large count stays readable. NaN prints as ``nan``; anything else as ``str(value)``.

    Args:
        value: the cell's value.
        digits: decimals (or significant digits, see above) of a float.

    Returns:
        The text of the cell.

    Example:
        >>> format_value(0.123456), format_value(None), format_value(3), format_value(True)
        ('0.1235', '–', '3', 'yes')
        >>> format_value(1e-5), format_value(0.0), format_value(0.5, 3), format_value(float("nan"))
        ('1e-05', '0', '0.500', 'nan')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) < 1e-3 or abs(value) >= 1e4:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)
