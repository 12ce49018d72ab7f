"""Reliability suite (issue 11): crash matrix, faults, hostile corpus, API fuzzing.

Default counts fit the README test run; `pytest --long tests/reliability` runs the full ones."""
