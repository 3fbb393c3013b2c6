"""Run every ``benchmarks/bench_*.py`` and write ``docs/benchmarks.md`` (``make bench``).

Each bench module exposes ``TITLE`` (optional) and ``run(quick: bool = False) -> str`` returning a
Markdown section. Hand-recorded measurements that cannot be re-run here (a cold CI run, a GPU
run) live in ``benchmarks/records/*.md`` and are copied in verbatim.

``--only NAME ...`` re-runs some benches and keeps the other sections of the existing file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    names = ["torch", "torchvision", "captum", "sklearn", "numpy", "cv2", "matplotlib"]
    parts = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            module = importlib.import_module(name)
            parts.append(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError:
            continue
    return ", ".join(parts)


def _git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _header() -> str:
    return (
        "# Benchmarks\n\n"
        "Written by `make bench` (`benchmarks/run_all.py`). Numbers are medians of interleaved "
        "repeats on a shared, noisy machine: compare the ratios within one section, not absolute "
        "times across sections or machines.\n\n"
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {_cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
        f"{platform.machine()}\n"
        f"- versions: {_versions()}\n"
        f"- git revision: {_git_revision()}\n"
    )


def _section(name: str, body: str, title: str) -> str:
    body = body.strip()
    if body.startswith("#"):  # a bench that writes its own heading: keep one
        first, _, rest = body.partition("\n")
        if first.lstrip("# ").strip() == title:
            body = rest
    return f"<!-- bench:{name} -->\n## {title}\n\n{body.strip()}\n<!-- /bench:{name} -->\n"


def _existing_sections(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pattern = re.compile(r"<!-- bench:(\S+) -->\n.*?<!-- /bench:\1 -->\n", re.S)
    return {m.group(1): m.group(0) for m in pattern.finditer(path.read_text())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", nargs="*", default=None, help="bench names, e.g. gate training")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    sections = _existing_sections(out)
    benches = sorted(HERE.glob("bench_*.py"))
    names = [p.stem.removeprefix("bench_") for p in benches]
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f"unknown bench(es) {sorted(unknown)}; available: {names}")
    failures = 0
    for path, name in zip(benches, names):
        if args.only is not None and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        print(f"[bench] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            body = module.run(quick=args.quick)
        except Exception:  # a failing bench is reported in the file, the others still run
            failures += 1
            body = "**failed**:\n\n```\n" + traceback.format_exc()[-3000:] + "```\n"
        elapsed = time.perf_counter() - start
        title = getattr(module, "TITLE", name)
        body += f"\n_(this section took {elapsed:.0f} s{', --quick' if args.quick else ''})_\n"
        sections[name] = _section(name, body, title)
        print(f"[bench] {name}: {elapsed:.0f} s", flush=True)
    for record in sorted((HERE / "records").glob("*.md")):
        first, _, rest = record.read_text().partition("\n")
        title = first.lstrip("# ").strip() if first.startswith("#") else record.stem
        body = rest if first.startswith("#") else first + "\n" + rest
        sections[f"record-{record.stem}"] = _section(f"record-{record.stem}", body, title)
    ordered = [sections[k] for k in names if k in sections]
    ordered += [v for k, v in sections.items() if k.startswith("record-")]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_header() + "\n" + "\n".join(ordered))
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
