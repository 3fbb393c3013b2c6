"""Shared helpers for the benchmarks: interleaved timing and Markdown tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["interleaved_medians", "markdown_table", "synthetic_bundle"]


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], rounds: int = 7, repeats: int = 5, warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each candidate, measured in interleaved rounds.

    Each round runs every candidate ``repeats`` times back to back, in turn, so slow drifts of a
    shared, noisy machine hit all candidates alike. Returns the median over rounds of the mean
    time per call within a round. ``clock`` defaults to wall time; ``time.process_time`` (CPU
    seconds of this process) is robust to other processes on an oversubscribed machine when the
    candidates run single-threaded.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = clock()
            for _ in range(repeats):
                fn()
            samples[name].append((clock() - start) / repeats)
    return {name: statistics.median(values) for name, values in samples.items()}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def synthetic_bundle(batch: int = 128, classes: int = 10, size: int = 28):
    """One batch of random uint8 images (1 channel) as a DataBundle whose splits are that batch."""
    import torch

    from csg_interp.data import ArrayDataset, DataBundle

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 1, size, size), generator=generator, dtype=torch.uint8)
    split = ArrayDataset(images, torch.arange(batch) % classes, [str(c) for c in range(classes)])
    return DataBundle("synthetic", split, split, split, split.classes, (0.5,), (0.25,))
