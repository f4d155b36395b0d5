"""The supervision report: the file `boxoffice up` rewrites on every change of its children's state
(ops/supervisor.py) and the API processes read for /readyz and /metrics."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "supervision.json"


@dataclass(frozen=True)
class Supervision:
    """What the live `up` of a data dir reports: each child's state ("ok" or why not; the API
    processes are left out, see Supervisor.siblings), restart counts and child process ids."""

    children: dict[str, str] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)


def supervised(data_dir: Path) -> Supervision:
    """The live `up`'s report on this data dir; empty without one (a file left by a killed `up`
    names a dead pid and is ignored)."""
    try:
        found = json.loads((data_dir / STATE_FILE).read_text())
        os.kill(int(found["pid"]), 0)
        return Supervision(
            children={str(k): str(v) for k, v in found["children"].items()},
            restarts={str(k): int(v) for k, v in found["restarts"].items()},
            pids={str(k): int(v) for k, v in found["pids"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Supervision()
