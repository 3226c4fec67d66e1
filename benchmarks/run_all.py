"""``make bench``: run every ``benchmarks/bench_*.py`` and collect one report.

    python benchmarks/run_all.py --out out/bench [--quick] [--only ridge,svm]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import device_line, format_rows, write_report  # noqa: E402


def discover() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the scripts run")
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    sections, failed = [f"# jaxml benchmarks\n\n{device_line()}\n"], []
    for name in names:
        print(f"== {name}", flush=True)
        try:
            rows = load(name).run(args.out, quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        write_report(rows, args.out, name)
        table = format_rows(rows)
        print(table, flush=True)
        sections.append(f"## {name}\n\n{table}\n")
    (args.out / "results.md").write_text("\n".join(sections))
    print(f"wrote {args.out / 'results.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
