"""Run every benchmark (bench/*_bench.py), or the named ones, and print one table.

    python bench/run.py                 # all, default (small) sizes
    python bench/run.py ops exchange    # only bench/ops_bench.py and bench/exchange_bench.py
    python bench/run.py writes          # audited writes with 16 concurrent writers (bench/writes_bench.py)
    python bench/run.py --full          # the full sizes each issue names

A benchmark module exposes `main(argv: list[str] | None = None) -> list[dict[str, object]]`
(rows with name, value, unit, baseline_name, baseline_value, optional target); each starts and
stops its own hub process. See docs/ops.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    return {p.name.removesuffix("_bench.py"): p for p in sorted(HERE.glob("*_bench.py"))}


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, object]]) -> str:
    headers = ["benchmark", "figure", "value", "unit", "baseline (same run)", "baseline value", "ratio", "target"]
    lines = []
    for row in rows:
        value, base = row.get("value"), row.get("baseline_value")
        ratio = f"{value / base:.2f}x" if isinstance(value, (int, float)) and isinstance(base, (int, float)) and base else ""
        lines.append(
            [
                str(row.get("benchmark", "")),
                str(row.get("name", "")),
                _fmt(value),
                str(row.get("unit", "")),
                str(row.get("baseline_name", "")),
                _fmt(base),
                ratio,
                str(row.get("target", "")),
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the govhub benchmarks and print one table.")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all): " + ", ".join(discover()))
    parser.add_argument("--full", action="store_true", help="the full sizes the issues name (slow)")
    args = parser.parse_args(argv)
    found = discover()
    unknown = [n for n in args.names if n not in found]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; available: {', '.join(found)}")
    rows: list[dict[str, object]] = []
    failed = []
    for name in args.names or list(found):
        started = time.monotonic()
        print(f"== {name} ({found[name].name})", flush=True)
        try:
            module = load(found[name])
            result = module.main(["--full"] if args.full else [])
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for row in result:
            rows.append({"benchmark": name, **row})
        print(f"   {len(result)} figure(s) in {time.monotonic() - started:.0f} s", flush=True)
    print()
    print(table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
