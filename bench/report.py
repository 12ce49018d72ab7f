"""Run every benchmark and write docs/benchmarks.md from what they printed.

    .venv/bin/python bench/report.py [--quick] [--only video,jobs] [--output docs/benchmarks.md]

Runs the scripts of BENCHMARKS one after another (each compares with its own peer or limit in
the same run), shows their output live, and writes the report: date, machine, commit, the exact
command of each benchmark, its output verbatim, a summary table of every goal (from each
script's last `RESULT {json}` line, see bench/_common.py) and the hand-written notes of
bench/notes.md. A script that does not exist yet, that skips (its peer is missing) or that
fails is listed as such with its reason; nothing is left out silently. `--quick` runs smaller
sizes: a smoke test of the whole chain, not figures to publish (the report says so).
"""

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT
DOC = ROOT / "docs" / "benchmarks.md"
NOTES = ROOT / "bench" / "notes.md"
QUICK_RESULTS = Path("/tmp/mediakeep-bench-quick-results")


@dataclass(frozen=True)
class Benchmark:
    name: str
    about: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()


# The fixed order: cheap single-process measurements first, the long mixed load last.
BENCHMARKS = (
    Benchmark("ingest", "streamed multipart upload vs dd / openssl", (), ("--sizes", "32M")),
    Benchmark("tus", "tus resumable uploads vs multipart", (), ("--size", "64M")),
    Benchmark("jobs", "job start latency, local and Celery", (), ("--jobs", "6")),
    Benchmark("images", "variant set CPU vs bare pyvips", (), ("--megapixels", "4")),
    Benchmark(
        "transforms",
        "signed /t/ transforms vs thumbor",
        (),
        ("--duration", "3", "--jpeg-duration", "6", "--cached-duration", "2"),
    ),
    Benchmark("video", "HLS ladder job vs bare ffmpeg", (), ("--seconds", "3", "--idle", "2")),
    Benchmark(
        "cheap",
        "hot reads vs hello world / one-query app / boto3, and --workers 2",
        (),
        ("--quick",),
    ),
    Benchmark(
        "load",
        "mixed locust load",
        (),
        ("--duration", "20", "--users", "4", "--peer-duration", "5"),
    ),
)


@dataclass
class Outcome:
    name: str
    about: str
    command: str
    status: str  # "ok", "skipped", "failed"
    reason: str = ""
    output: str = ""
    seconds: float = 0.0
    result: dict[str, Any] | None = None
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- parsing


def parse_result(output: str) -> dict[str, Any] | None:
    """The last `RESULT {json}` line of a benchmark's output, or None."""
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            try:
                value = json.loads(line.removeprefix("RESULT "))
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def outcome_of(
    bench: Benchmark, command: str, output: str, returncode: int, seconds: float
) -> Outcome:
    result = parse_result(output)
    outcome = Outcome(bench.name, bench.about, command, "ok", "", output, seconds, result)
    if result is not None and result.get("skipped"):
        outcome.status, outcome.reason = "skipped", str(result["skipped"])
    elif returncode != 0:
        tail = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
        outcome.status, outcome.reason = "failed", f"exit status {returncode}: {tail[0][:300]}"
    elif result is None:
        outcome.status, outcome.reason = "failed", "no RESULT line in its output"
    return outcome


# --------------------------------------------------------------------------- rendering


def number(value: float) -> str:
    size = abs(value)
    if float(value).is_integer() and size < 1e15:
        return f"{int(value):,}"
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


_OPS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def with_unit(text: str, unit: str) -> str:
    if unit == "x":
        return f"{text}×"
    return f"{text} {unit}" if unit else text


def goal_rows(outcome: Outcome) -> list[str]:
    if outcome.status != "ok" or outcome.result is None:
        return [f"| {outcome.name} | — | {outcome.status}: {outcome.reason} | — |"]
    rows = []
    for goal in outcome.result.get("goals", []):
        measured = goal.get("measured")
        shown = "not measured" if measured is None else with_unit(number(measured), goal["unit"])
        if measured is not None and "low" in goal and "high" in goal:
            shown += f" ({number(goal['low'])}–{number(goal['high'])})"
        target = (
            _OPS.get(goal["op"], goal["op"]) + " " + with_unit(number(goal["target"]), goal["unit"])
        )
        rows.append(
            f"| {outcome.name} | {goal['name']} ({target}) | {shown} | "
            f"{'yes' if goal['met'] else '**no**'} |"
        )
    for name, value in (outcome.result.get("figures") or {}).items():
        shown = number(value) if isinstance(value, int | float) else str(value)
        rows.append(f"| {outcome.name} | {name} (no goal) | {shown} | — |")
    return rows or [f"| {outcome.name} | — | no goals reported | — |"]


def merge_partial(
    previous: dict[str, Any], run: dict[str, Any], outcomes: list[Outcome]
) -> list[Outcome]:
    """A run of some benchmarks (`--only`) merged into the saved report of earlier runs: the
    benchmarks not run keep their outcomes, and `run` records which ran now and, for the
    others, the run each comes from (so the page never passes old figures off as this run's)."""
    rerun = {outcome.name for outcome in outcomes}
    by_name = {o["name"]: Outcome(**o) for o in previous["outcomes"] if o["name"] not in rerun}
    by_name |= {outcome.name: outcome for outcome in outcomes}
    before = previous["run"]
    own = before.get("rerun") or [o["name"] for o in previous["outcomes"]]
    groups = [{"names": own} | {key: before[key] for key in ("started", "finished", "commit")}]
    groups += before.get("earlier_runs", [])
    earlier = []
    for group in groups:
        names = [name for name in group["names"] if name in by_name and name not in rerun]
        if names:
            earlier.append(group | {"names": names})
    run["rerun"] = [b.name for b in BENCHMARKS if b.name in rerun]
    run["earlier_runs"] = earlier
    return [by_name[b.name] for b in BENCHMARKS if b.name in by_name]


def render(run: dict[str, Any], outcomes: list[Outcome], notes: str) -> str:
    info = run["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/report.py` (`bash dev.sh bench`); do not edit by hand: the notes at "
        "the end come from `bench/notes.md`. Each benchmark runs its peer or the hardware limit "
        "in the same run, A/B interleaved (at least 3 pairs), and prints ratios; the goals are "
        'DESIGN.md\'s "Performance goals". JSON results are in `bench/results/`.',
        "",
        "## This run",
        "",
        f"- Date: {run['started']} to {run['finished']} (UTC)",
        f"- Commit: `{run['commit']}`",
        f"- Command: `{run['command']}`"
        + (
            " — **quick mode: smoke sizes, not figures to compare with the goals**"
            if run["quick"]
            else ""
        ),
        f"- Machine: {common.describe(info)}",
        f"- Disk: `{info['filesystem']}`",
        "- The client (load generator, curl, ffmpeg peer) runs on the same cores as the server. "
        "Other work on the machine shows in the load averages below; ratios are measured "
        "A/B interleaved so that drift hits both sides, but absolute figures move with it.",
    ]
    if run.get("rerun"):
        lines.append(
            f"- Only {', '.join(run['rerun'])} ran in this run; the others' figures come from:"
        )
        lines += [
            f"  - {', '.join(group['names'])}: the run of {group['started']} to"
            f" {group['finished']} (UTC) at commit `{group['commit']}`"
            for group in run.get("earlier_runs", [])
        ]
    if run.get("contention"):
        lines.append(f"- {run['contention']}")
    lines += [
        "",
        "## Summary",
        "",
        "Measured: the median over the pairs, with the range of the pairs in brackets when "
        "the benchmark gives it.",
        "",
        "| benchmark | goal | measured | met? |",
        "|---|---|---|---|",
    ]
    for outcome in outcomes:
        lines += goal_rows(outcome)
    lines += ["", "## Runs", ""]
    for outcome in outcomes:
        lines += [f"### {outcome.name}: {outcome.about}", ""]
        if outcome.status == "skipped" and not outcome.output:
            lines += [f"Not run: {outcome.reason}.", ""]
            continue
        load = ""
        if outcome.load_before and outcome.load_after:
            load = (
                f"; load average {outcome.load_before[0]:.1f} before, "
                f"{outcome.load_after[0]:.1f} after"
            )
        lines += [
            f"`{outcome.command}` — {outcome.status}"
            + (f" ({outcome.reason})" if outcome.reason else "")
            + f", {outcome.seconds:.0f} s{load}",
            "",
            "```text",
            outcome.output.rstrip("\n"),
            "```",
            "",
        ]
    if notes.strip():
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- running


def run_one(bench: Benchmark, quick: bool, timeout: float) -> Outcome:
    script = ROOT / "bench" / f"{bench.name}.py"
    args = list(bench.quick if quick else bench.args)
    if quick and '"--output"' in (script.read_text() if script.exists() else ""):
        # Quick runs do not overwrite the published JSON results.
        QUICK_RESULTS.mkdir(parents=True, exist_ok=True)
        args += ["--output", str(QUICK_RESULTS / f"{bench.name}.json")]
    shown = shlex.join([".venv/bin/python", f"bench/{bench.name}.py", *args])
    if not script.exists():
        return Outcome(bench.name, bench.about, shown, "skipped", f"{script.name} does not exist")
    print(f"\n=== {shown}", flush=True)
    before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    output: list[str] = []
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    returncode = process.wait()
    reader.join(10)
    outcome = outcome_of(bench, shown, "".join(output), returncode, time.perf_counter() - started)
    if timed_out:
        outcome.status, outcome.reason = "failed", f"stopped after {timeout:.0f} s"
    outcome.load_before = before
    outcome.load_after = [round(x, 2) for x in os.getloadavg()]
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="", help="comma list of benchmark names")
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--notes", type=Path, default=NOTES)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--contention", default="", help="a sentence on other load, if known")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only write the report again from a saved bench/results/report.json (new notes)",
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        outcomes = [Outcome(**o) for o in saved["outcomes"]]
        notes = args.notes.read_text() if args.notes.exists() else ""
        args.output.write_text(render(saved["run"], outcomes, notes))
        print(f"wrote {args.output}")
        return
    names = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = names - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = datetime.datetime.now(datetime.UTC)
    run: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "commit": common.git_commit(),
        "command": shlex.join([".venv/bin/python", "bench/report.py", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": common.machine(),
        "contention": args.contention,
    }
    outcomes = []
    for bench in BENCHMARKS:
        if names and bench.name not in names:
            continue
        outcome = run_one(bench, args.quick, args.timeout)
        if outcome.status != "ok":
            print(f"--- {bench.name}: {outcome.status}: {outcome.reason}", flush=True)
        outcomes.append(outcome)
    run["finished"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    saved = (QUICK_RESULTS if args.quick else ROOT / "bench" / "results") / "report.json"
    if names and saved.exists():
        outcomes = merge_partial(json.loads(saved.read_text()), run, outcomes)
    common.write_json(saved, {"run": run, "outcomes": [asdict(o) for o in outcomes]})
    notes = args.notes.read_text() if args.notes.exists() else ""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(run, outcomes, notes))
    print(f"wrote {args.output}")
    for outcome in outcomes:
        goals = (outcome.result or {}).get("goals", [])
        met = sum(1 for g in goals if g["met"])
        print(
            f"  {outcome.name:<11} {outcome.status:<8} {met}/{len(goals)} goals met "
            f"{outcome.reason}"
        )


if __name__ == "__main__":
    main()
