"""A figure and its references (`Row`), the combined table, and the JSON written for `compare.py`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.timing import Measurement

SIDES = ("nnet", "numpy", "torch")
SIDE_TITLES = {"nnet": "nnet", "numpy": "NumPy floor", "torch": "PyTorch"}


@dataclass
class Row:
    """One figure of one benchmark, with its references measured in the same run.

    ``values`` are in ``unit`` (None when a side could not run; ``notes`` says why). Ratios are always
    nnet / reference: below 1 is better for times and memory (``higher_is_better=False``), above 1 is
    better for throughputs. ``target`` is issue 5's wording; ``bounds`` are its limits as
    ``(reference, bound)`` pairs, where the reference is a side ("numpy", "torch"), a key of
    ``extra_ratios`` (a ratio to something that is not a side, e.g. "matmul"), or "value" (a limit on
    nnet's own figure), so the table can say whether the target is met in this run.
    """

    benchmark: str
    metric: str
    unit: str
    higher_is_better: bool = False
    values: dict[str, float | None] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    target: str = ""
    bounds: list[tuple[str, float]] = field(default_factory=list)
    extra_ratios: dict[str, float | None] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    #: BLAS threads were found waiting for each other right after this benchmark ran.
    contended: bool = False

    def ratio(self, ref: str) -> float | None:
        if ref == "value":
            return self.values.get("nnet")
        if ref not in SIDES:
            return self.extra_ratios.get(ref)
        a, b = self.values.get("nnet"), self.values.get(ref)
        if a is None or b is None or b == 0:
            return None
        return a / b

    def met(self) -> bool | None:
        if not self.bounds:
            return None
        verdicts = []
        for ref, bound in self.bounds:
            r = self.ratio(ref)
            if r is None:
                return None
            verdicts.append(r >= bound if self.higher_is_better else r <= bound)
        return all(verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "values": self.values,
            "spread": self.spread,
            "notes": self.notes,
            "ratios": {ref: self.ratio(ref) for ref in SIDES[1:] if ref in self.values},
            "extra_ratios": self.extra_ratios,
            "target": self.target,
            "met": self.met(),
            "contended": self.contended,
            "detail": self.detail,
        }


def fill(row: Row, measured: dict[str, Measurement], convert: Any, *, spread: bool = True) -> Row:
    """Put each side's median step time, converted to the row's unit by ``convert(seconds)``, in ``row``."""
    for side, m in measured.items():
        if m.stats is None:
            row.values[side] = None
            row.notes[side] = m.error or "not available"
        else:
            row.values[side] = convert(m.stats.median)
            if spread and m.stats.n >= 4:  # quartiles of fewer steps say nothing
                row.spread[side] = m.stats.spread
            row.detail[side] = {
                "median_s": m.stats.median,
                "p25_s": m.stats.p25,
                "p75_s": m.stats.p75,
                "min_s": m.stats.min,
                "steps": m.stats.n,
                "round_medians_s": m.stats.round_medians,
                "page_faults_per_step": m.stats.faults_per_step,
            }
    return row


def fmt_value(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def _cell(row: Row, side: str) -> str:
    v = row.values.get(side, None)
    if side not in row.values:
        return "-"
    s = fmt_value(v)
    sp = row.spread.get(side)
    if v is not None and sp is not None and not math.isnan(sp) and sp >= 0.10:
        s += f" ±{sp * 50:.0f}%"  # half the interquartile range: only shown when it is large
    return s


def print_row(row: Row) -> None:
    """One benchmark's own lines, printed as soon as it has run."""
    arrow = "higher is better" if row.higher_is_better else "lower is better"
    print(f"  {row.metric} [{row.unit}, {arrow}]")
    for side in SIDES:
        if side not in row.values:
            continue
        v = row.values[side]
        line = f"    {SIDE_TITLES[side]:<12} {fmt_value(v):>12}"
        if v is not None and side in row.spread:
            line += f"   (IQR {row.spread[side] * 100:.0f}% of median"
            faults = row.detail.get(side, {}).get("page_faults_per_step")
            line += f", {faults:,.0f} page faults/step)" if faults is not None else ")"
        if v is None:
            line += f"   ({row.notes.get(side, 'not available')})"
        print(line)
    ratios = [
        f"nnet/{SIDE_TITLES[s]} {fmt_ratio(row.ratio(s))}" for s in SIDES[1:] if s in row.values
    ]
    if ratios:
        print("    " + ",  ".join(ratios))
    for ref, r in row.extra_ratios.items():
        print(f"    nnet/{ref} {fmt_ratio(r)}")
    if row.target:
        print(f"    target {row.target}: {_met_word(row.met())}")


def _met_word(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "-"}[met]


def table(rows: list[Row]) -> str:
    """The combined table: one line per figure."""
    head = [
        "benchmark",
        "metric",
        "unit",
        "nnet",
        "NumPy floor",
        "PyTorch",
        "nnet/NumPy",
        "nnet/PyTorch",
        "target",
        "met",
    ]
    body = []
    for r in rows:
        unit = r.unit + (" ↑" if r.higher_is_better else " ↓")
        target = r.target
        for ref, x in r.extra_ratios.items():
            target += f" [nnet/{ref} {fmt_ratio(x)}]"
        body.append(
            [
                r.benchmark + (" *" if r.contended else ""),
                r.metric,
                unit,
                _cell(r, "nnet"),
                _cell(r, "numpy"),
                _cell(r, "torch"),
                fmt_ratio(r.ratio("numpy")) if "numpy" in r.values else "-",
                fmt_ratio(r.ratio("torch")) if "torch" in r.values else "-",
                target or "-",
                _met_word(r.met()) if r.target else "-",
            ]
        )
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]
    numeric = {3, 4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


LEGEND = """\
Each figure is the median over all timed steps of all rounds (warm-up excluded); "±N%" appears when half
the interquartile range exceeds 5% of the median. Ratios are nnet / reference from this same run: for
units marked ↓ (times, memory) below 1.00x means nnet is better; for units marked ↑ (throughputs)
above 1.00x means nnet is better. "n/a": the side could not run (reason printed above).
"*" after a benchmark: right after it ran, BLAS with all threads was slower than with one (other
processes hold the cores): its figures are unreliable, rerun on a quiet machine."""


def write_json(path: str | Path, info: dict[str, Any], rows: list[Row], argv: list[str]) -> None:
    doc = {"format": "nnet-benchmarks/1", "argv": argv, "machine": info}
    doc["rows"] = [r.to_json() for r in rows]
    Path(path).write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)
