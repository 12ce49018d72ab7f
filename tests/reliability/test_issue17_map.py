"""Issue 17's findings each have their refusal in the suite, and docs/reliability.md says so
truthfully: its counts are the corpora's sizes and its table names the tests of
`tests/reliability/issue17.py`, which must exist."""

import ast
import re
from pathlib import Path

import pytest

from tests.reliability.issue17 import FINDINGS
from tests.reliability.test_hostile_files import FILES
from tests.reliability.test_hostile_requests import CORPUS as REQUESTS
from tests.reliability.test_hostile_sequences import CORPUS as SEQUENCES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BACKENDS = 2  # every request and sequence case runs on SQLite + local and PostgreSQL + S3


def _corpus_cases(finding: str) -> list[str]:
    return [
        *(case.name for case in REQUESTS if case.finding == finding),
        *(case.name for case in SEQUENCES if case.finding == finding),
        *FINDINGS[finding].corpus_files,
    ]


def _doc_rows() -> dict[str, list[str]]:
    """The rows of the doc's "Issue 17's findings" table, by finding id."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Issue 17's findings", 1)[1].split("\n#", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].strip("*") in FINDINGS:
            rows[cells[0].strip("*")] = cells
    return rows


def _top_level_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_corpus_case_names_a_finding_of_issue_17() -> None:
    for finding, name in [(c.finding, c.name) for c in REQUESTS] + [
        (c.finding, c.name) for c in SEQUENCES
    ]:
        assert finding in FINDINGS, name
    assert len({case.name for case in SEQUENCES}) == len(SEQUENCES)
    file_ids = {item.id for item in FILES}
    for entry in FINDINGS.values():
        assert set(entry.corpus_files) <= file_ids, entry.corpus_files


@pytest.mark.parametrize("finding", list(FINDINGS))
def test_every_finding_has_its_refusals_and_the_named_tests_exist(finding: str) -> None:
    entry = FINDINGS[finding]
    assert _corpus_cases(finding) or entry.tests, f"{finding}: no test refuses it"
    for node in entry.tests:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        assert name in _top_level_functions(ROOT / path), node


def test_the_doc_table_matches_the_map() -> None:
    rows = _doc_rows()
    assert list(rows) == list(FINDINGS), "one row per finding, in the issue's order"
    for finding, cells in rows.items():
        # | finding | severity | what got through | corpus cases | domain tests |
        assert cells[1] == FINDINGS[finding].severity, cells
        assert int(cells[3]) == len(_corpus_cases(finding)), (finding, cells[3])
        for node in FINDINGS[finding].tests:
            path = node.partition("::")[0]
            assert f"`{path}`" in cells[4], (finding, path)


def test_the_doc_counts_are_the_corpora_sizes() -> None:
    text = DOC.read_text(encoding="utf-8")
    for label, corpus in (("hostile requests", REQUESTS), ("hostile sequences", SEQUENCES)):
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} "))
        counts = re.search(r"\| (\d+) cases, (\d+) requests \|", row)
        assert counts is not None, row
        assert (int(counts[1]), int(counts[2])) == (len(corpus), BACKENDS * len(corpus)), row
    by_finding = {finding: len(_corpus_cases(finding)) for finding in FINDINGS}
    total = re.search(r"(\d+) corpus cases in all", text)
    assert total is not None
    assert int(total.group(1)) == sum(by_finding.values())
