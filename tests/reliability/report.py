"""Figures for docs/reliability.md: each reliability test prints one JSON line of what it
measured and, when `MEDIAKEEP_RELIABILITY_REPORT` names a file, appends it there."""

import json
import os
import sys
from typing import Any


def record(line: dict[str, Any]) -> None:
    text = json.dumps(line, sort_keys=True)
    sys.stdout.write(text + "\n")
    target = os.environ.get("MEDIAKEEP_RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(text + "\n")
