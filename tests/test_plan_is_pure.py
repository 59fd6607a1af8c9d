"""plan() is a pure function of desired and stored specs: no database, no clock."""

from __future__ import annotations

from typing import Any

from scheduler.plan import Stored, diff, plan
from scheduler.spec import fingerprint


class Job:
    def __init__(self, job_id: str, canonical: dict[str, Any], source: str = "a.yaml:2") -> None:
        self.id, self.canonical, self.source = job_id, canonical, source
        self.fingerprint = fingerprint(canonical)


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schedule": {"cron": "0 9 * * *", "timezone": "UTC"},
        "run": {"type": "command", "command": ["true"]},
        "timeout": None,
        "paused": False,
    }
    return {**base, **overrides}


def stored(job: Job, source: str | None = None) -> Stored:
    return Stored(job.id, job.canonical, job.fingerprint, source or job.source)


def test_new_changed_removed_and_unchanged_jobs_are_told_apart() -> None:
    same, changed, new = Job("same", spec()), Job("changed", spec()), Job("new", spec())
    gone = Job("gone", spec())
    edited = Job("changed", spec(timeout="5m"))
    result = plan(
        {"same": same, "changed": edited, "new": new},
        {"same": stored(same), "changed": stored(changed), "gone": stored(gone)},
    )
    assert [j.id for j in result.add] == ["new"]
    assert [(u.job.id, u.fields) for u in result.update] == [("changed", ["timeout"])]
    assert [s.id for s in result.remove] == ["gone"]
    assert result.unchanged == ["same"]
    assert result.as_dict() == {
        "add": ["new"],
        "update": [{"id": "changed", "fields": ["timeout"]}],
        "remove": ["gone"],
        "unchanged": ["same"],
    }


def test_only_schedule_changes_reschedule() -> None:
    old = Job("a", spec())
    args_only = plan(
        {"a": Job("a", spec(run={"type": "command", "command": ["false"]}))}, {"a": stored(old)}
    )
    assert args_only.update[0].fields == ["run.command"]
    assert not args_only.update[0].reschedules
    new_cron = plan(
        {"a": Job("a", spec(schedule={"cron": "0 10 * * *", "timezone": "UTC"}))},
        {"a": stored(old)},
    )
    assert new_cron.update[0].fields == ["schedule.cron"]
    assert new_cron.update[0].reschedules


def test_a_job_that_only_moved_is_unchanged_but_relocated() -> None:
    job = Job("a", spec(), source="b.yaml:7")
    result = plan({"a": job}, {"a": stored(Job("a", spec()), source="a.yaml:2")})
    assert result.unchanged == ["a"] and not result.has_changes
    assert [j.id for j in result.moved] == ["a"]


def test_empty_inputs() -> None:
    assert not plan({}, {}).has_changes
    assert plan({}, {}).summary() == "0 to add, 0 to update, 0 to remove, 0 unchanged"


def test_diff_reports_leaf_paths_with_old_and_new_values() -> None:
    changes = diff({"a": 1, "b": {"c": [1], "d": 2}}, {"a": 1, "b": {"c": [2]}, "e": 3})
    assert [(c.field, c.old, c.new) for c in changes] == [
        ("b.c", [1], [2]),
        ("b.d", 2, None),
        ("e", None, 3),
    ]
