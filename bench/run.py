"""Run every benchmark (bench/*_bench.py), or the named ones, and print one table.

    python bench/run.py                 # all, default (small) sizes
    python bench/run.py ops exchange    # only bench/ops_bench.py and bench/exchange_bench.py
    python bench/run.py writes          # audited writes with 16 concurrent writers (bench/writes_bench.py)
    python bench/run.py --full          # the full sizes each issue names
    python bench/run.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
                                        # the hubs on fresh PostgreSQL databases next to that URL
    python bench/run.py targets --quick # only the benchmarks of the speed targets, reduced sizes

After the table of every figure comes the table of the targets: each figure that has one, its ratio
to its baseline measured in the same run (for bulk issuance, per signature), and whether it is met.

A benchmark module exposes `main(argv: list[str] | None = None) -> list[dict[str, object]]`
(rows with name, value, unit, baseline_name, baseline_value, optional target); each starts and
stops its own hub process. A module's `ACCEPTS` names the options of run.py it takes (`--postgres`,
`--quick`); the others run as they are. See docs/ops.md, "Benchmarks", and docs/operations.md.
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


# The benchmarks whose figures carry the speed targets (granted lookups, verifications, writes, bulk issuance).
TARGETS = ["exchange", "certhub", "writes"]


def check(row: dict[str, object]) -> tuple[str, str] | None:
    """A figure's target as (what was got, "met" or "NOT met"), or None when it has none. A row's
    `check` is ("none", 0): its value must be 0; (">=", x) or ("<=", x): its ratio to its baseline
    (times its `per`, e.g. signatures per certificate) against x."""
    rule = row.get("check")
    value, base = row.get("value"), row.get("baseline_value")
    if not isinstance(rule, (tuple, list)) or not isinstance(value, (int, float)):
        return None
    op, bound = str(rule[0]), float(rule[1])
    if op == "none":
        return f"{value:g}", "met" if value == 0 else "NOT met"
    if not isinstance(base, (int, float)) or not base:
        return "no baseline", "NOT met"
    per = row.get("per", 1.0)
    ratio = value / base * (float(per) if isinstance(per, (int, float)) else 1.0)
    met = ratio >= bound if op == ">=" else ratio <= bound
    shown = f"{ratio:.0%}" if op == ">=" else f"{ratio:.2f}x"
    return shown, "met" if met else "NOT met"


def targets(rows: list[dict[str, object]]) -> str:
    """The table of the figures that have a target."""
    lines = [["benchmark", "figure", "target", "got", ""]]
    for row in rows:
        verdict = check(row)
        if verdict is not None:
            lines.append([str(row.get("benchmark", "")), str(row.get("name", "")), str(row.get("target", "")), *verdict])
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


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
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all; targets: "
                        + ", ".join(TARGETS) + "): " + ", ".join(discover()))  # fmt: skip
    parser.add_argument("--full", action="store_true", help="the full sizes the issues name (slow)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes, where a benchmark has them")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server: each hub runs on a fresh database there")
    args = parser.parse_args(argv)
    found = discover()
    if "targets" in args.names:
        args.names = [n for n in args.names if n != "targets"] + [n for n in TARGETS if n not in args.names]
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
            accepts = getattr(module, "ACCEPTS", ())
            options = ["--full"] if args.full else []
            options += ["--quick"] if args.quick and "--quick" in accepts else []
            if args.postgres and "--postgres" not in accepts:
                print(f"   {name} runs on SQLite only", flush=True)
            options += ["--postgres", args.postgres] if args.postgres and "--postgres" in accepts else []
            result = module.main(options)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for row in result:
            rows.append({"benchmark": name, **row})
        print(f"   {len(result)} figure(s) in {time.monotonic() - started:.0f} s", flush=True)
    print()
    print(table(rows))
    print(f"\nTargets ({'PostgreSQL' if args.postgres else 'SQLite'}; ratios to the baseline of the same run)")
    print(targets(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
