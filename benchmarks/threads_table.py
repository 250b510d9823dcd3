"""``python -m benchmarks --threads 1,default``: the suite once per thread setting, side by side.

Issue 12 asks for every ratio at one thread and at the machine's default threads, both reported.
The thread count of BLAS and of PyTorch's OpenMP pool is read once, when each library loads, so
each setting runs the suite in its own subprocess (the same arguments minus ``--threads``):

* an integer ``N``: ``NNET_BENCH_THREADS=N`` (every side's pools, benchmarks/__init__.py) and
  ``NNET_NUM_THREADS=N`` (nnet's own count, nnet/threads.py);
* ``default``: both variables removed, so every side uses what it would for a user: the cores
  this process may run on.

Each subprocess prints its own figures and table as it goes; then one table puts each figure's
ratios under each setting side by side. With ``--json PATH`` each setting's results go to their
own file, ``PATH`` with ``.threads-1`` (or ``.threads-default``) before the suffix, which
``compare.py`` reads like any other run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.results import SIDES, fmt_ratio, fmt_value

ENV_VARS = ("NNET_BENCH_THREADS", "NNET_NUM_THREADS")


def parse_settings(spec: str) -> list[str]:
    """``"1,default"`` -> ``["1", "default"]``; raises ValueError on anything else."""
    settings = [s.strip().lower() for s in spec.split(",") if s.strip()]
    if not settings:
        raise ValueError("--threads needs at least one setting, e.g. 1,default")
    for s in settings:
        if s != "default" and not (s.isdigit() and int(s) >= 1):
            raise ValueError(
                f"--threads: {s!r} is neither a positive integer nor 'default' (e.g. 1,default)"
            )
    if len(set(settings)) != len(settings):
        raise ValueError(f"--threads: a setting is repeated in {spec!r}")
    return settings


def json_path(path: str, setting: str) -> str:
    """Where ``setting``'s results go when the user asked for ``--json path``."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.threads-{setting}{p.suffix or '.json'}"))


def environment(setting: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ENV_VARS:
        env.pop(var, None)
    if setting != "default":
        for var in ENV_VARS:
            env[var] = setting
    return env


def _strip_threads(argv: list[str]) -> list[str]:
    """``argv`` without ``--threads X`` / ``--threads=X`` and without ``--json X``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--threads", "--json"):
            skip = True
        elif not a.startswith(("--threads=", "--json=")):
            out.append(a)
    return out


def run_settings(settings: list[str], argv: list[str], json_out: str | None) -> int:
    """Run the suite under each setting, then print the side-by-side table. Returns an exit code."""
    base = _strip_threads(argv)
    docs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nnet-bench-threads-") as tmp:
        for setting in settings:
            path = json_path(json_out, setting) if json_out else str(Path(tmp) / f"{setting}.json")
            label = "the default threads" if setting == "default" else f"{setting} thread(s)"
            print(f"=== suite at {label} (subprocess) ===", flush=True)
            cmd = [sys.executable, "-m", "benchmarks", *base, "--json", path]
            done = subprocess.run(cmd, env=environment(setting), check=False)
            if done.returncode != 0 or not Path(path).exists():
                print(f"the run at {label} failed (exit status {done.returncode})", flush=True)
                return done.returncode or 1
            docs[setting] = json.loads(Path(path).read_text())
            print(flush=True)
    print(side_by_side(docs))
    if "1" in docs and "default" in docs:
        print(thread_gains(docs["1"], docs["default"]))
    if json_out:
        print("results written to " + ", ".join(json_path(json_out, s) for s in settings))
    return 0


def _title(setting: str, doc: dict[str, Any]) -> str:
    threads = doc.get("machine", {}).get("threads")
    if setting == "default":
        return f"default ({threads})" if threads else "default"
    return f"{setting} thread" + ("" if setting == "1" else "s")


def _ratio(row: dict[str, Any], side: str) -> str:
    if side not in row.get("values", {}) or "nnet" not in row.get("values", {}):
        return "-"
    return fmt_ratio(row.get("ratios", {}).get(side))


def _met(row: dict[str, Any]) -> str:
    if not row.get("target"):
        return "-"
    return {True: "met", False: "NOT met", None: "-"}[row.get("met")]


def side_by_side(docs: dict[str, dict[str, Any]]) -> str:
    """One line per figure: under each setting the three sides' values, the ratios and the verdict.

    Figures are matched by (benchmark, metric); a figure missing under a setting shows ``-``.
    Other ratios (nnet/matmul, define-by-run / Sequential) are listed per setting after the target.
    """
    settings = list(docs)
    keys: list[tuple[str, str]] = []
    rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for s, doc in docs.items():
        rows[s] = {}
        for r in doc.get("rows", []):
            key = (r["benchmark"], r["metric"])
            rows[s][key] = r
            if key not in keys:
                keys.append(key)
    head = ["benchmark", "metric", "unit"]
    for s in settings:
        t = _title(s, docs[s])
        head += [f"nnet [{t}]", "NumPy floor", "PyTorch", "nnet/NumPy", "nnet/PyTorch", "met"]
    head += ["target"]
    body = []
    for key in keys:
        first = next(rows[s][key] for s in settings if key in rows[s])
        unit = first["unit"] + (" ↑" if first.get("higher_is_better") else " ↓")
        line = [key[0] + (" *" if any(rows[s].get(key, {}).get("contended") for s in settings) else ""),
                key[1], unit]  # fmt: skip
        extras = []
        for s in settings:
            r = rows[s].get(key)
            if r is None:
                line += ["-"] * 6
                continue
            values = r.get("values", {})
            line += [
                *(fmt_value(values.get(side)) if side in values else "-" for side in SIDES),
                _ratio(r, "numpy"),
                _ratio(r, "torch"),
                _met(r),
            ]
            extras += [
                f"nnet/{ref} {fmt_ratio(x)} ({_title(s, docs[s])})"
                for ref, x in r.get("extra_ratios", {}).items()
            ]
        line.append(" ".join([first.get("target") or "-", *(f"[{e}]" for e in extras)]))
        body.append(line)
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]
    text_cols = {0, 1, 2, len(head) - 1}

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in text_cols else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [fmt(head), fmt(["-" * w for w in widths]), *(fmt(b) for b in body)]
    out.append(
        "Ratios are nnet / reference within each setting's own run (ratios across settings compare "
        "runs, not sides); '*': BLAS was contended right after that benchmark under some setting."
    )
    return "\n".join(out)


#: Units of the speed figures (times, rates) that issue 12's "never slower with the default thread
#: count than with one thread" applies to; memory and growth factors are not speed.
SPEED_UNITS = {"us/op", "ms", "s", "GFLOP/s", "img/s"}


def thread_gains(one: dict[str, Any], default: dict[str, Any]) -> str:
    """nnet's speed-up from one thread to the default threads for every speed figure measured under
    both (above 1.00x: faster at the default), the slower ones named first: issue 12 asks that nnet be
    never slower at the default thread count. Ratios across two runs, so a few percent is noise."""
    by_key = {(r["benchmark"], r["metric"]): r for r in one.get("rows", [])}
    gains = []
    for r in default.get("rows", []):
        base = by_key.get((r["benchmark"], r["metric"]))
        if base is None or r.get("unit") not in SPEED_UNITS:
            continue
        a, b = base.get("values", {}).get("nnet"), r.get("values", {}).get("nnet")
        if not a or not b:
            continue
        gain = b / a if r.get("higher_is_better") else a / b
        gains.append((gain, f"{r['benchmark']}: {r['metric']} {fmt_ratio(gain)}"))
    title = _title("default", default)
    if not gains:
        return f"nnet at {title} against 1 thread: no speed figure measured under both"
    slower = [text for g, text in sorted(gains) if g < 1.0]
    faster = [text for g, text in sorted(gains) if g >= 1.0]
    return "\n".join([
        f"nnet's speed-up at {title} over 1 thread (issue 12: never below 1.00x):",
        "  slower at the default: " + ("; ".join(slower) if slower else "none"),
        "  not slower: " + ("; ".join(faster) if faster else "none"),
    ])  # fmt: skip
