"""The job page's pure parts: output is made visible text (control characters and bytes that
were not UTF-8 as escapes, newlines kept), the declared block is cut from its file at the
job's line, and the duration chart scales bars to the longest finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scheduler.jobpage import TAIL_CHARS, declared_text, duration_bars, page_context, visible
from scheduler.store import Store


def test_control_characters_and_undecodable_bytes_become_visible() -> None:
    tail = "\x1b[31mred\x1b[0m\r\nline two\tend \x07" + b"\xff".decode("utf-8", "surrogateescape")
    assert visible(tail) == "\\x1b[31mred\\x1b[0m\\x0d\nline two\tend \\x07\\udcff"
    assert visible(None) == "" and visible("\x9b") == "\\x9b"  # C1 CSI too


def test_the_declared_block_is_cut_at_the_jobs_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "jobs:\n  first:\n    schedule: {interval: 1h}\n\n    run: {type: cleanup}\n"
        "  second:\n    schedule: {interval: 2h}\n"
    )
    assert (
        declared_text(f"{path}:2") == "first:\n  schedule: {interval: 1h}\n\n  run: {type: cleanup}"
    )
    assert declared_text(f"{path}:6") == "second:\n  schedule: {interval: 2h}"
    assert declared_text(f"{tmp_path / 'gone.yaml'}:2") is None
    assert declared_text("(built in)") is None


def run(outcome: str, start: int, seconds: float | None) -> dict[str, Any]:
    started = f"2026-01-01T00:00:{start:02d}+00:00"
    finished = None if seconds is None else f"2026-01-01T00:00:{start + seconds:06.3f}+00:00"
    return {"outcome": outcome, "started_at": started, "finished_at": finished}


def test_the_chart_scales_finished_runs_oldest_first() -> None:
    runs = [  # newest first, as list_runs returns them
        run("running", 40, None),
        run("failure", 30, 1.0),
        run("skipped", 20, 0.0),
        run("success", 10, 4.0),
    ]
    bars, longest = duration_bars(runs)
    assert longest == 4.0
    assert [(b.outcome, round(b.height)) for b in bars] == [("success", 116), ("failure", 29)]
    assert bars[0].x < bars[1].x


def test_long_output_is_cut_to_its_end_on_the_page(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with store.write() as conn:
            conn.execute(
                store.runs.insert(),
                {
                    "run_id": "r1",
                    "job_id": "big",
                    "scheduled_time": None,
                    "started_at": 10.0,
                    "finished_at": 12.5,
                    "outcome": "success",
                    "exit_code": 0,
                    "attempt": 1,
                    "output_tail": "a" * 10_000 + "THE END",
                    "error": None,
                },
            )
        job = {"id": "big", "source": "(built in)", "spec": {}, "next_fire_times": []}
        (shown,) = page_context(store, job)["runs"]
    finally:
        store.close()
    assert shown["cut"] and len(shown["output_tail"]) == TAIL_CHARS
    assert shown["output_tail"].endswith("THE END") and shown["duration"] == 2.5
