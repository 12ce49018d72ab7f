"""bench/report.py: the RESULT convention parsed and rendered into docs/benchmarks.md, and one
real quick benchmark run through it end to end."""

import importlib.util
import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


report = _load("report")
common = _load("_common")
cheap = _load("cheap")

# What bench/images.py and bench/video.py printed in a real run (trimmed), RESULT lines made
# by the same helpers the scripts use.
IMAGES_OUT = """-- source: 1731x1154 JPEG (0.7 MB); presets: thumbnail, small, medium, large
   pair 1/3 (mediakeep/pyvips): mediakeep 0.40 s CPU, pyvips 0.40 s CPU, ratio 1.001

     source | variants | mediakeep CPU | pyvips CPU | ratio (median) | ratio (max) | goal ≤ 1.2
1731x1154   |        5 |        0.40 s |     0.40 s |          1.001 |       1.006 | met
wrote /tmp/images-test.json
"""
VIDEO_OUT = """   pair 1/3 (service/bare): service 7.25 s, bare 8.12 s, wall 0.893×
wall, service / bare                  1.169×  goal ≤ 1.05×   NOT met
"""


def captured(text: str, name: str, goals: list[dict[str, Any]], **extra: Any) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        common.emit_result(name, goals, **extra)
    return text + buffer.getvalue()


def sample_outcomes() -> list[Any]:
    images = captured(
        IMAGES_OUT,
        "images",
        [common.goal("variant set CPU / bare pyvips", 1.0012, "<=", 1.2, "x")],
        figures={"ratio_max": 1.006},
    )
    video = captured(
        VIDEO_OUT,
        "video",
        [
            common.goal("HLS ladder wall, service / bare ffmpeg", 1.169, "<=", 1.05, "x"),
            common.goal("job start after upload (max)", 32.6, "<", 1000, "ms"),
        ],
    )
    benches = {b.name: b for b in report.BENCHMARKS}
    return [
        report.outcome_of(benches["images"], "python bench/images.py", images, 0, 11.5),
        report.outcome_of(benches["video"], "python bench/video.py", video, 0, 135.0),
        report.Outcome("cheap", "cheap endpoints", "x", "skipped", "cheap.py does not exist"),
        report.outcome_of(benches["jobs"], "python bench/jobs.py", "Traceback\nBoom\n", 1, 2.0),
    ]


def test_parse_result_takes_the_last_result_line() -> None:
    text = 'RESULT {"benchmark": "a", "goals": []}\nnoise\nRESULT {"benchmark": "b", "goals": []}\n'
    assert report.parse_result(text)["benchmark"] == "b"
    assert report.parse_result("no result here\n") is None
    assert report.parse_result("RESULT {not json\n") is None
    assert report.parse_result("RESULT [1, 2]\n") is None


def test_outcomes_say_ok_skipped_or_failed() -> None:
    bench = report.BENCHMARKS[0]
    ok = report.outcome_of(bench, "c", 'RESULT {"benchmark": "x", "goals": []}\n', 0, 1)
    assert (ok.status, ok.reason) == ("ok", "")
    skipped = report.outcome_of(
        bench,
        "c",
        'SKIP: no peer\nRESULT {"benchmark": "x", "goals": [], "skipped": "no peer"}',
        0,
        1,
    )
    assert (skipped.status, skipped.reason) == ("skipped", "no peer")
    crashed = report.outcome_of(bench, "c", "Traceback\nValueError: bad\n", 1, 1)
    assert crashed.status == "failed"
    assert "exit status 1" in crashed.reason
    assert "ValueError: bad" in crashed.reason
    silent = report.outcome_of(bench, "c", "tables but no result\n", 0, 1)
    assert (silent.status, silent.reason) == ("failed", "no RESULT line in its output")


def test_goal_is_met_by_its_operator() -> None:
    assert common.goal("g", 1.05, "<=", 1.05)["met"] is True
    assert common.goal("g", 1.0501, "<=", 1.05)["met"] is False
    assert common.goal("g", 999.9, "<", 1000)["met"] is True
    assert common.goal("g", 0.59, ">=", 0.6)["met"] is False
    assert common.goal("g", None, ">=", 0.6)["met"] is False
    with pytest.raises(ValueError, match="op must be"):
        common.goal("g", 1, "==", 1)


def test_goal_with_spread_shows_the_range_of_the_pairs() -> None:
    made = common.goal("GET / one-query app", 0.6234, ">=", 0.6, "x", (0.6012, 0.6498))
    assert (made["met"], made["low"], made["high"]) == (True, 0.6012, 0.6498)
    assert "low" not in common.goal("g", 1.0, ">=", 0.6, "x")
    assert "low" not in common.goal("g", None, ">=", 0.6, "x", (0.1, 0.2))
    text = captured("", "cheap", [made, common.goal("p99", 31.5, "<=", 25, "ms", (22.0, 40.25))])
    benches = {b.name: b for b in report.BENCHMARKS}
    rows = report.goal_rows(report.outcome_of(benches["cheap"], "c", text, 0, 1))
    assert rows[0] == "| cheap | GET / one-query app (≥ 0.60×) | 0.62× (0.60–0.65) | yes |"
    assert rows[1] == "| cheap | p99 (≤ 25 ms) | 31.5 ms (22–40.2) | **no** |"


def _round(pair: int, **rates: float) -> dict[str, dict[str, Any]]:
    return {
        key: {"pair": pair, "req_per_s": rate, "p99_ms": 10.0 + pair, "errors": 0}
        | {"server_cores": 1.0, "client_cores": 0.1, "db_cores": None}
        for key, rate in rates.items()
    }


def test_cheap_takes_ratios_within_each_round() -> None:
    """Each ratio is taken between the two sides of one round, then the median and range of
    those: a side's drift across rounds must not pair one round's figure with another's."""
    rounds = [
        _round(0, hello=5000, peer=1000, peer_list=800, get=700, list=500, get_w2=1300),
        _round(1, hello=2500, peer=500, peer_list=400, get=300, list=320, get_w2=450),
        _round(2, hello=5000, peer=1000, peer_list=1000, get=650, list=610, get_w2=1100),
    ]
    runs = {key: [r[key] for r in rounds] for key in rounds[0]}
    goals = {g["name"]: g for g in cheap.goals_of("sqlite", {"runs": runs})}
    get = goals["sqlite: GET /media/{id} / one-query app"]
    assert (get["measured"], get["low"], get["high"], get["met"]) == (0.65, 0.6, 0.7, True)
    # The list against the one-query app reading the same page, round by round.
    listing = goals["sqlite: GET /media?limit=20 / one-query app, the same page"]
    assert (listing["measured"], listing["low"], listing["high"]) == (0.625, 0.61, 0.8)
    workers = goals["sqlite: --workers 2 / 1 worker, GET /media/{id}"]
    assert (workers["measured"], workers["low"], workers["high"]) == (1.6923, 1.5, 1.8571)
    assert goals["sqlite: GET /media/{id} p99"]["measured"] == 11.0
    assert goals["sqlite: failed requests, all sides"]["met"] is True
    assert not any("presign" in name for name in goals)


def test_cheap_lists_every_goal_of_a_backend_that_did_not_run() -> None:
    goals = cheap.goals_of("postgres", None)
    assert {g["measured"] for g in goals} == {None}
    assert not any(g["met"] for g in goals)
    assert "postgres: S3 presign, S3Storage.signed_url calls/s / raw boto3 calls/s" in {
        g["name"] for g in goals
    }
    assert "postgres: --workers 2 / 1 worker, GET /media/{id}" in {g["name"] for g in goals}


def test_partial_runs_keep_the_other_benchmarks_and_say_when_each_ran() -> None:
    outcomes = sample_outcomes()
    names = [b.name for b in report.BENCHMARKS if b.name in {o.name for o in outcomes}]
    first_run = {"started": "2026-11-22 18:00", "finished": "2026-11-22 18:30", "commit": "old"}
    saved = {"run": first_run, "outcomes": [asdict(o) for o in outcomes]}
    # Two partial runs, one after the other, each merged into what the previous one saved.
    for step, name in enumerate(names[:2]):
        fresh = replace(next(o for o in outcomes if o.name == name), reason=f"again {step}")
        run = {
            "started": f"2026-12-07 2{step}:00",
            "finished": f"2026-12-07 2{step}:10",
            "commit": f"new{step}",
            "command": ".venv/bin/python bench/report.py --only " + name,
            "quick": False,
            "machine": common.machine(),
        }
        merged = report.merge_partial(saved, run, [fresh])
        saved = {"run": run, "outcomes": [asdict(o) for o in merged]}
    assert [o.name for o in merged] == names  # every benchmark, in the fixed order
    assert {o.name: o.reason for o in merged}[names[0]] == "again 0"
    assert {o.name: o.reason for o in merged}[names[1]] == "again 1"
    assert run["rerun"] == [names[1]]
    # The first partial run's benchmark is credited to that run, the rest to the first run.
    assert run["earlier_runs"] == [
        {
            "names": [names[0]],
            "started": "2026-12-07 20:00",
            "finished": "2026-12-07 20:10",
            "commit": "new0",
        },
        {"names": names[2:]} | first_run,
    ]
    text = report.render(run, merged, "")
    assert f"Only {names[1]} ran in this run" in text
    assert (
        f"  - {names[0]}: the run of 2026-12-07 20:00 to 2026-12-07 20:10 (UTC) at commit `new0`"
        in text
    )
    assert "2026-11-22 18:00 to 2026-11-22 18:30 (UTC) at commit `old`" in text


def test_render_writes_summary_runs_and_notes() -> None:
    run = {
        "started": "2026-11-22 18:00",
        "finished": "2026-11-22 18:30",
        "commit": "abc1234",
        "command": ".venv/bin/python bench/report.py",
        "quick": False,
        "machine": common.machine(),
        "contention": "other test suites ran at the same time",
    }
    text = report.render(run, sample_outcomes(), "### Ingest\n\nWhy the rate goal is missed.\n")
    summary = text[text.index("## Summary") : text.index("## Runs")]
    assert "| images | variant set CPU / bare pyvips (≤ 1.20×) | 1.00× | yes |" in summary
    assert "| images | ratio_max (no goal) | 1.01 | — |" in summary
    assert (
        "| video | HLS ladder wall, service / bare ffmpeg (≤ 1.05×) | 1.17× | **no** |" in summary
    )
    assert "| video | job start after upload (max) (< 1,000 ms) | 32.6 ms | yes |" in summary
    assert "| cheap | — | skipped: cheap.py does not exist | — |" in summary
    assert "| jobs | — | failed: exit status 1: Boom | — |" in summary
    runs = text[text.index("## Runs") : text.index("## Notes")]
    # Each benchmark's output verbatim, under its exact command.
    assert "`python bench/images.py` — ok, 12 s" in runs
    assert IMAGES_OUT.rstrip("\n") in runs
    assert "Not run: cheap.py does not exist." in runs
    assert "Why the rate goal is missed." in text[text.index("## Notes") :]
    assert "abc1234" in text
    assert "other test suites ran at the same time" in text
    assert common.describe(run["machine"]) in text


def test_text_table_aligns_columns() -> None:
    table = common.text_table(["name", "MB/s"], [["multipart", "96"], ["tus", "1280"]])
    lines = table.splitlines()
    assert lines[0] == "     name | MB/s"
    assert lines[1] == "-" * len(lines[0])
    assert lines[2:] == ["multipart |   96", "      tus | 1280"]


def test_report_runs_a_real_quick_benchmark(tmp_path: Path) -> None:
    """bench/images.py at quick sizes through report.py: real libvips work on both sides."""
    doc = tmp_path / "benchmarks.md"
    notes = tmp_path / "notes.md"
    notes.write_text("A kept note.\n")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "report.py"),
            "--quick",
            "--only",
            "images",
            "--output",
            str(doc),
            "--notes",
            str(notes),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| images | variant set CPU")]
    assert len(rows) == 1, text
    measured = rows[0].split("|")[3].strip()
    assert measured.endswith("×")
    assert float(measured.removesuffix("×")) > 0
    assert "quick mode" in text
    assert "`.venv/bin/python bench/images.py --megapixels 4 --output " in text
    assert "pair 3/3" in text  # the script's own output, verbatim
    assert "A kept note." in text


def test_cheap_runs_end_to_end_on_sqlite(tmp_path: Path) -> None:
    """bench/cheap.py --quick on SQLite: real servers (mediakeep one and two workers, hello
    world, the one-query app), real wrk; every goal of the backend gets a measured value."""
    if cheap.common.ensure_wrk() is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    output = tmp_path / "cheap.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "cheap.py"),
            "--quick",
            "--backends",
            "sqlite",
            "--seconds",
            "1",
            "--seed",
            "2",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = report.parse_result(done.stdout)
    assert result is not None
    names = {g["name"]: g for g in result["goals"]}
    assert set(names) == {g["name"] for g in cheap.goals_of("sqlite", None)}
    assert all(g["measured"] is not None for g in names.values()), names
    assert names["sqlite: GET /media/{id} / one-query app"]["measured"] > 0
    assert result["figures"]["sqlite: one-query app req/s"] > 0
    saved = json.loads(output.read_text())
    runs = saved["backends"]["sqlite"]["runs"]
    assert set(runs) == {"hello", "peer", "peer_list", "get", "list", "get_w2"}
    assert len(runs["get_w2"][0]["worker_shares"]) == 2  # the CPU split over the 2 processes
    assert "round 1 GET /media?limit=20" in done.stdout
