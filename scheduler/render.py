"""Plain-text and JSON views of plans, reconcile results and stored jobs, shared by the
command line and the daemon's replies (so a delegated reconcile prints identically), and
a reconcile as the daemon's log lines."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from scheduler.terminal import safe_text

if TYPE_CHECKING:  # `scheduler jobs` and `history` print without the job-file models
    from scheduler.declared import DeclaredJob
    from scheduler.plan import Plan


def plan_details(
    plan: Plan[DeclaredJob], applied: bool | None = None, instances: list[str] | None = None
) -> dict[str, Any]:
    """Everything needed to print a plan, JSON-safe. ``instances``: what it does to
    instances of templates ("search: 312 instances updated")."""
    details: dict[str, Any] = {
        "add": [
            {"id": j.id, "source": str(j.source), "schedule": _schedule_text(j)} for j in plan.add
        ],
        "update": [
            {
                "id": u.job.id,
                "source": str(u.job.source),
                "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in u.changes],
            }
            for u in plan.update
        ],
        "remove": [{"id": s.id, "source": s.source} for s in plan.remove],
        "unchanged": list(plan.unchanged),
    }
    if applied is not None:
        details["applied"] = applied
    if instances:
        details["instances"] = instances
    return details


def _schedule_text(job: DeclaredJob) -> str:
    from scheduler.arming import description  # only a plan that adds jobs needs triggers

    return description(job)


def plan_json(details: dict[str, Any]) -> dict[str, Any]:
    """The public JSON shape of a plan: ids, and the changed fields of updates."""
    out: dict[str, Any] = {
        "add": [a["id"] for a in details["add"]],
        "update": [
            {"id": u["id"], "fields": [c["field"] for c in u["changes"]]} for u in details["update"]
        ],
        "remove": [r["id"] for r in details["remove"]],
        "unchanged": details["unchanged"],
    }
    if "applied" in details:
        out["applied"] = details["applied"]
    if details.get("instances"):
        out["instances"] = details["instances"]
    return out


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def plan_text(details: dict[str, Any]) -> str:
    lines = []
    for add in details["add"]:
        lines.append(f"+ add {add['id']}: {add['schedule']}  ({add['source']})")
    for update in details["update"]:
        lines.append(f"~ update {update['id']}  ({update['source']})")
        for change in update["changes"]:
            lines.append(
                f"    {change['field']}: {_value(change['old'])} -> {_value(change['new'])}"
            )
    for remove in details["remove"]:
        lines.append(f"- remove {remove['id']}  (was {remove['source']})")
    for line in details.get("instances", []):
        lines.append(f"* {line}")
    counts = (
        f"{len(details['add'])} to add, {len(details['update'])} to update, "
        f"{len(details['remove'])} to remove, {len(details['unchanged'])} unchanged"
    )
    if details.get("applied") is True:
        counts = counts.replace("to add", "added").replace("to update", "updated")
        counts = counts.replace("to remove", "removed")
        lines.append(f"Applied: {counts}.")
    elif not (details["add"] or details["update"] or details["remove"]):
        lines.append(f"No changes: {len(details['unchanged'])} job(s) up to date.")
    else:
        lines.append(f"Plan: {counts}.")
    return "\n".join(lines)


def _last_run(job: dict[str, Any]) -> str:
    text = f"{job['last_outcome']} {job['last_run_time']}" if job["last_outcome"] else "-"
    if job.get("overdue"):
        success = job.get("last_success_time") or "never"
        text = f"OVERDUE (expect success within {job['expect']}; last {success}) {text}"
    return text


def jobs_text(jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return "no jobs in the store: run `scheduler reconcile`"
    header = ("ID", "SCHEDULE", "HANDLER", "NEXT RUN", "PAUSED", "LAST RUN", "SOURCE")
    rows = [header]
    for job in jobs:
        paused = job["paused_by"] or "-"
        rows.append(
            (
                job["id"],
                job["schedule"],
                job["handler"],
                job["next_run_time"] or ("-" if job["paused"] else job["state"]),
                paused,
                _last_run(job),
                job["source"],
            )
        )
    return table(rows)


def table(rows: list[tuple[Any, ...]]) -> str:
    """Rows as columns padded to their widest cell (one format per line: `scheduler jobs`
    prints 10,000 of them)."""
    cells = [tuple(map(str, row)) for row in rows]
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    return "\n".join(line.format(*row).rstrip() for row in cells)


def history_text(runs: list[dict[str, Any]], output_lines: int | None = 3) -> str:
    """One line per run (with the run id that `scheduler logs` takes), then the last
    ``output_lines`` lines of its output (all of it for ``None``)."""
    if not runs:
        return "no runs recorded yet"
    lines = []
    for run in runs:
        code = "-" if run["exit_code"] is None else run["exit_code"]
        lines.append(
            f"{run['started_at']}  {run['job_id']}  {run['outcome']}  exit={code}  "
            f"try={run['attempt']}  finished={run['finished_at'] or '-'}  run={run['run_id']}"
        )
        if run.get("task_id"):
            worker = safe_text(run.get("worker") or "(not known yet)")
            lines.append(f"    task {safe_text(run['task_id'])} on {worker}")
        # Escaped before it is split: a carriage return or a form feed is shown, not a break.
        output = safe_text(run["output_tail"] or "").strip()
        tail = output.split("\n") if output else []
        if output_lines is not None:
            tail = tail[-output_lines:] if output_lines else []
        lines.extend(f"    | {line}" for line in tail)
        if run["error"] and run["outcome"] not in ("success", "sent"):
            last = safe_text(run["error"]).strip().rsplit("\n", 1)[-1]
            lines.append(f"    ! {last}")
    return "\n".join(lines)


def job_text(job: dict[str, Any]) -> str:
    """``scheduler get``: what the job is, when it runs next, how it ran, its spec."""
    import yaml

    state = f"paused by {job['paused_by']}" if job["paused"] else job["state"]
    lines = [
        f"job:         {job['id']}",
        f"description: {job['description'] or '-'}",
        f"source:      {job['source']}",
        f"schedule:    {job['schedule']}",
        f"handler:     {job['handler']}",
        f"state:       {state}",
    ]
    upcoming = job.get("next_fire_times") or []
    lines.append(f"next runs:   {upcoming[0] if upcoming else '-'}")
    lines.extend(f"             {when}" for when in upcoming[1:])
    lines.append("last runs:")
    runs = job.get("runs") or []
    if runs:
        lines.extend(f"  {line}" for line in history_text(runs).split("\n"))
    else:
        lines.append("  none yet")
    lines.append("spec:")
    spec = yaml.safe_dump(job["spec"], sort_keys=False, allow_unicode=True, width=88)
    lines.extend(f"  {line}" for line in spec.rstrip("\n").split("\n"))
    return "\n".join(lines)


def log_reconcile(
    log: logging.Logger, why: str, details: dict[str, Any], parsed_files: int, seconds: float
) -> None:
    """A reconcile as the daemon logs it (``details``: ``plan_details``): one line of counts,
    with the same counts as structured fields, then a line per job added, updated or
    removed."""
    added, updated, removed = details["add"], details["update"], details["remove"]
    counts = {
        "added": len(added),
        "updated": len(updated),
        "removed": len(removed),
        "unchanged": len(details["unchanged"]),
        "parsed_files": parsed_files,
        "duration": round(seconds, 6),
    }
    log.info(
        "reconcile (%s): %d added, %d updated, %d removed, %d unchanged; "
        "%d file(s) parsed in %.0f ms",
        why,
        counts["added"],
        counts["updated"],
        counts["removed"],
        counts["unchanged"],
        parsed_files,
        seconds * 1000,
        extra={"event": "reconcile", "trigger": why, **counts},
    )
    for job in added:
        log.info("  + %s (%s)", job["id"], job["source"])
    for update in updated:
        log.info("  ~ %s: %s", update["id"], ", ".join(c["field"] for c in update["changes"]))
    for stored in removed:
        log.info("  - %s", stored["id"])
