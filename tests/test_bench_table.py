"""The benchmark table (`tests/bench/run.py table`) renders each bench's own figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).with_name("bench")


def _markdown() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_markdown", BENCH / "_markdown.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_markdown", module)
    spec.loader.exec_module(module)
    return module


def test_table_from_saved_lines(tmp_path: Path) -> None:
    md = _markdown()
    reserve = {
        "bench": "reserve",
        "ratio": 0.91,
        "round_ratios": [0.88, 0.95],
        "goal": 0.9,
        "met": True,
        "reserve": {"ok_rps": 4410.2},
        "baseline_evalsha": {"rps": 4865.0},
    }
    draw = {
        "bench": "draw",
        "ratio": 1.4,
        "goal": 1.0,
        "met": False,
        "draw_s": 7.1,
        "waiters": 1_000_000,
        "redis_bytes_per_waiter": 53.0,
    }
    saved = tmp_path / "runs.txt"
    saved.write_text("progress line\n" + json.dumps(reserve) + "\n" + json.dumps(draw) + "\n")
    text = md.table(md.read_results(saved))
    lines = text.splitlines()
    assert lines[0] == "| bench | figures | ratio | goal |"
    assert lines[2] == (
        "| reserve | 4,410 holds/s vs 4,865 bare-EVALSHA/s | 0.91 (rounds 0.88 to 0.95) | ≥ 0.9 — met |"
    )
    assert lines[3] == (
        "| draw | 7.1 s to draw 1,000,000; 53.0 B of Redis a waiter | 1.4 | ≥ 1.0 — NOT met |"
    )
    assert len(lines) == 4
