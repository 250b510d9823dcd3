"""Compare two runs of the suite: ``python benchmarks/compare.py A.json B.json``.

For each figure present in both runs: nnet's value in A and in B and the change, the change of the
references between the runs (the machine's drift: if PyTorch also got 20% slower, so would nnet
with no change of its own), and nnet's ratios to the NumPy floor and to PyTorch in each run. The
ratios are the figures to trust across runs: absolute times on a shared machine drift 1.5-2x over
minutes, the ratios measured within one run much less.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: str) -> dict[str, Any]:
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != "nnet-benchmarks/1":
        raise SystemExit(f"{path}: not a results file of `python -m benchmarks --json`")
    return doc


def _num(v: float | None) -> str:
    if v is None:
        return "n/a"
    a = abs(v)
    return (
        f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"
    )


def _ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _change(a: float | None, b: float | None, higher_is_better: bool) -> str:
    if a is None or b is None or a == 0:
        return "n/a"
    c = b / a - 1
    better = c > 0 if higher_is_better else c < 0
    word = "better" if better else "worse"
    return f"{c * 100:+.0f}% {word}" if abs(c) >= 0.005 else "same"


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    rows_b = {(r["benchmark"], r["metric"]): r for r in b["rows"]}
    head = [
        "benchmark",
        "metric",
        "unit",
        "nnet A",
        "nnet B",
        "nnet change",
        "PyTorch drift",
        "nnet/PyTorch A",
        "B",
        "nnet/NumPy A",
        "B",
    ]
    body = []
    for ra in a["rows"]:
        rb = rows_b.get((ra["benchmark"], ra["metric"]))
        if rb is None:
            continue
        hib = ra.get("higher_is_better", False)
        va, vb = ra["values"].get("nnet"), rb["values"].get("nnet")
        ta, tb = ra["values"].get("torch"), rb["values"].get("torch")
        drift = _change(ta, tb, hib) if ta is not None and tb is not None else "-"
        body.append(
            [
                ra["benchmark"] + (" *" if ra.get("contended") or rb.get("contended") else ""),
                ra["metric"],
                ra["unit"],
                _num(va),
                _num(vb),
                _change(va, vb, hib),
                drift,
                _ratio(ra.get("ratios", {}).get("torch")),
                _ratio(rb.get("ratios", {}).get("torch")),
                _ratio(ra.get("ratios", {}).get("numpy")),
                _ratio(rb.get("ratios", {}).get("numpy")),
            ]
        )
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in body])


def _describe(tag: str, path: str, doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    dirty = " +uncommitted" if m.get("dirty") else ""
    quick = " --quick" if m.get("quick") else ""
    return (
        f"{tag}: {path}  commit {m.get('commit')}{dirty}  {m.get('date')}{quick}  "
        f"numpy {m.get('numpy')}  torch {m.get('torch')}  threads {m.get('threads')}"
    )


def _mismatches(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    ma, mb = a.get("machine", {}), b.get("machine", {})
    keys = ("cpu", "cores", "threads", "numpy", "torch", "python", "quick")
    return [f"{k} differs: {ma.get(k)} vs {mb.get(k)}" for k in keys if ma.get(k) != mb.get(k)]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    a, b = _load(args[0]), _load(args[1])
    print(_describe("A", args[0], a))
    print(_describe("B", args[1], b))
    for w in _mismatches(a, b):
        print(f"WARNING: {w}")
    print()
    print(compare(a, b))
    print(
        "\nnnet change: B against A (for times, negative is better). PyTorch drift: the same change for "
        "PyTorch, which did not change between the runs: nnet changes of that size are the machine, "
        "not the code. Compare the ratios. * BLAS threads were contended in A or B for that "
        "benchmark: its figures are unreliable."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
