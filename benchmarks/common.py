"""What every benchmark script shares: where results go, and how they are saved."""

from __future__ import annotations

import json
import os
import platform
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def save_json(name: str, data: dict) -> str:
    """Write results/NAME.json with the machine and time it was measured on."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    data = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": _machine(), **data}
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
    return path


def figure_path(name: str) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    return os.path.join(RESULTS, f"{name}.png")


def table(rows: list[list], header: list[str]) -> str:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def key_value_options(pairs: list[str]) -> dict:
    """--space-opt KEY=VALUE pairs as a dict, values parsed as JSON where they parse."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
