"""Replay the bad-input corpora against the real ``deepyn`` CLI: the project's reliability scoreboard.

    python bench/replay_corpus.py                       # JSON table on stdout, summary on stderr
    python bench/replay_corpus.py --out bench/results/replay_corpus.json

Both corpora are generated on the spot (nothing downloaded): the hostile cases of issue 13
(``tests/corpus/hostile.py``: outputs aimed at the evidence, damaged and odd media, a spoofing file
name, interrupted reports, damaged cache entries, hostile model files) and the bad-input corpus of
``tests/corpus/make_corpus.py`` (each file analysed with ``--json`` into a separate folder). Every case
runs as a fresh process (real exit codes and signals) with a time limit, and each row records: case,
exit code, message, evidence unchanged, junk left (any new file or folder not named as the case's
output), traceback, hang. The totals at the end are what issue 13 asks to be zero.
Needs PyTorch only to make the small untrained test model (``--model`` to give one instead).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.corpus.hostile import HostileCase, build_hostile_corpus, run_case


def _model(folder: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    from deepyn_gui.core.model.export import export_untrained

    return export_untrained(4, folder / "uynet_tiny.onnx", seed=0, name="uynet-w4-replay", threads=1)


def _bad_input_cases(folder: Path, model: Path) -> list[HostileCase]:
    """The make_corpus files as replay cases: refused in one line (exit 2) or analysed (0, or 3 when
    frames were lost to damage), evidence untouched, only the named JSON written."""
    from tests.corpus.make_corpus import build_corpus

    ev = folder / "ev"
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []
    for c in build_corpus(ev):
        if c.special == "vanish":
            continue  # needs an in-process hook (tests/corpus/test_corpus.py)
        target = out / f"{c.name}.json"
        rc = (2,) if c.expect == "error" else ((3,) if c.partial else (0,))
        cases.append(HostileCase(f"corpus:{c.name}", 0, ["analyze", str(c.path), "--model", str(model), "-q",
                                                         "--threads", "1", "--json", str(target), *c.args],
                                 rc, c.message if c.expect == "error" else "", [target]))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the JSON here as well as to stdout")
    ap.add_argument("--model", default=None, help="ONNX model to use (default: a tiny untrained one)")
    ap.add_argument("--timeout", type=float, default=240, help="seconds before a case counts as a hang")
    ap.add_argument("--skip-bad-inputs", action="store_true", help="only the issue-13 hostile cases")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deepyn-replay-") as tmp:
        tmpd = Path(tmp)
        model = _model(tmpd, args.model)
        hostile_root = tmpd / "hostile"
        groups = [(hostile_root, build_hostile_corpus(hostile_root, model))]
        if not args.skip_bad_inputs:
            bad_root = tmpd / "bad"
            groups.append((bad_root, _bad_input_cases(bad_root, model)))
        for root, cases in groups:
            for case in cases:
                row = run_case(case, root, in_process=False, timeout=args.timeout)
                row["command"] = row["command"].replace(str(model), "<model>")
                rows.append(row)
                mark = "ok  " if row["ok"] else "FAIL"
                print(f"{mark} {row['case']:<40} rc={row['exit_code']} {row['seconds']:6.1f}s "
                      f"{'; '.join(row['problems'])[:120]}", file=sys.stderr)
    totals = {
        "cases": len(rows),
        "ok": sum(r["ok"] for r in rows),
        "evidence_changed": sum(not r["evidence_unchanged"] for r in rows),
        "tracebacks": sum(bool(r["traceback"]) for r in rows),
        "junk_left": sum(bool(r["junk_left"]) for r in rows),
        "hangs": sum(bool(r["hang"]) for r in rows),
        "other_problems": sum(bool(r["problems"]) for r in rows),
    }
    doc = {
        "format": "deepyn.replay_corpus/1",
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "seconds": round(time.monotonic() - t0, 1),
        "totals": totals,
        "rows": rows,
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        from deepyn_gui.core.export.atomic import write_bytes_atomic

        write_bytes_atomic(args.out, (text + "\n").encode("utf-8"))
    print(f"{totals['ok']}/{totals['cases']} cases ok; evidence changed {totals['evidence_changed']}, "
          f"tracebacks {totals['tracebacks']}, junk left {totals['junk_left']}, hangs {totals['hangs']}",
          file=sys.stderr)
    return 0 if totals["ok"] == totals["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
