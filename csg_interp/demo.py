"""The end-to-end demo behind ``make demo`` / ``csg-interp demo``.

Contract (issue 3): after set-up it runs in at most 8 minutes on 2 CPU cores. Each stage is a
function ``stage(ctx: DemoContext) -> None`` registered in ``STAGES`` in pipeline order; a stage
reads what earlier stages put on the context and prints the paths it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DemoContext", "STAGES", "run_demo"]


@dataclass
class DemoContext:
    out: Path
    dataset: str
    data_root: str | None
    device: str
    seed: int
    quick: bool
    # Filled by the stages:
    runs: dict[str, Path] = field(default_factory=dict)  # "csg" / "std" -> run directory
    artifacts: dict[str, Any] = field(default_factory=dict)


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def stage_detect(ctx: DemoContext) -> None:
    """Adversarial detection (issue 7): PGD at ε = 0.03 and 0.1 on 1k test images (200 with
    ``--quick``); gate consistency of the CSG model vs the MI gate of the STD model, max-softmax
    and Mahalanobis; fitted on validation images. Writes ``<csg run>/detect/``."""
    from csg_interp.applications.pipeline import detect_run
    from csg_interp.commands.detect import format_summary

    if "csg" not in ctx.runs:
        print("[detect] skipped: no CSG run on the context (run the train stage first)")
        return
    result = detect_run(
        ctx.runs["csg"], ctx.runs.get("std"), method="pgd", eps=(0.03, 0.1),
        num_images=200 if ctx.quick else 1000, fit_images=500 if ctx.quick else 2000,
        device=ctx.device, seed=ctx.seed, data_root=ctx.data_root,
    )
    ctx.artifacts["detect"] = result
    print(format_summary(result))
    out = Path(ctx.runs["csg"]) / "detect"
    print(f"[detect] wrote {out / 'metrics.json'} and {', '.join(result['figures'])} in {out}")


# Pipeline order: train → evaluate → explain → localize → detect → report.
STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("detect", stage_detect),
]


def run_demo(
    out: str = "runs/demo",
    dataset: str = "auto",
    data_root: str | None = None,
    device: str = "auto",
    seed: int = 0,
    quick: bool = False,
    stages: list[str] | None = None,
) -> DemoContext:
    """Run the demo stages in order (or only ``stages``); returns the filled context."""
    ctx = DemoContext(Path(out), dataset, data_root, device, seed, quick)
    ctx.out.mkdir(parents=True, exist_ok=True)
    known = [name for name, _ in STAGES]
    for name in stages or []:
        if name not in known:
            raise ValueError(f"unknown demo stage {name!r}; stages: {', '.join(known)}")
    start = time.perf_counter()
    for name, stage in STAGES:
        if stages and name not in stages:
            continue
        _banner(f"demo stage: {name}")
        stage_start = time.perf_counter()
        stage(ctx)
        print(f"[{name}] done in {time.perf_counter() - stage_start:.1f} s", flush=True)
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; everything is under {ctx.out}/")
    return ctx
