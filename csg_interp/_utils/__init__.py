"""Private helpers shared by every layer: device resolution, an eval-mode context, atomic file
writes, min-max scaling and the number format of tables. Each idea is defined here once; the
public modules call these.

This is the bottom layer of the package: it imports only the standard library, numpy and torch.
"""

from .device import eval_mode, resolve_device
from .formatting import format_value
from .io import atomic_writer, write_bytes_atomic, write_json_atomic, write_text_atomic
from .scaling import min_max

__all__ = [
    "atomic_writer",
    "eval_mode",
    "format_value",
    "min_max",
    "resolve_device",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
