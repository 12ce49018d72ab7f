"""Bounds on a client's free-form JSON document (media `metadata`): depth, keys and size.

Free-form JSON is stored once and then returned in every GET, list and event: unbounded, a
10 MB or 100k-key document costs every reader, and one nested a few hundred levels deep broke
serialization (a 500 in pydantic, whose serializer stops at a fixed depth). The walk here is
iterative, so a deep document cannot exhaust the stack while it is being measured.
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JsonLimits:
    depth: int  # `{"a": 1}` is 1 deep, `{"a": {"b": 1}}` 2; lists count as a level too
    keys: int  # object keys at every level, together
    size: int  # bytes of the compact UTF-8 JSON serialization


def json_limit_breach(value: Any, limits: JsonLimits) -> str | None:
    """Why `value` is over `limits`, or None when it is within them."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    keys = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limits.depth:
                return f"nested deeper than {limits.depth} levels"
            children = node.values() if isinstance(node, dict) else node
            if isinstance(node, dict):
                keys += len(node)
                if keys > limits.keys:
                    return f"more than {limits.keys} keys"
            stack.extend((child, depth + 1) for child in children)
    size = json_size(value)
    if size > limits.size:
        return f"{size} bytes as JSON; the limit is {limits.size}"
    return None


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (UTF-8, no ASCII escaping): how it is measured."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
