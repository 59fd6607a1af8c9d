"""The HTTP routes of templates and their instances (``instances``): list templates, create,
modify and delete instances, and one-off runs of any job. Writes go through the daemon's
``Control.handle`` (a standby hands them to the leader through the store), reads go to the
store. Included by ``api.bound_router`` (so by ``create_app`` and an app's mount).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from scheduler import instances
from scheduler.api_auth import authorize, control_of
from scheduler.instances import TemplateNotFound
from scheduler.store import Store

STATUS = {**instances.STATUS, "JobNotFound": 404, "InvalidJobFiles": 422}

SCHEDULE_HELP = (
    'one of {"cron": "0 9 * * *"}, {"interval": "2h"}, {"at": ISO 8601}, {"in": "5m"}, '
    "with timezone, jitter, start, end as in a job file; absent: the template's default"
)


class Control(Protocol):
    """What these routes need of ``api.Control``."""

    store: Store

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]: ...


async def _control(request: Request) -> Control:
    control: Control = await control_of(request)
    return control


Ctl = Annotated[Control, Depends(_control)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIn(_Body):
    id: str | None = Field(default=None, description="the job id; generated when absent")
    params: dict[str, Any] = Field(default_factory=dict)
    schedule: dict[str, Any] | None = Field(default=None, description=SCHEDULE_HELP)
    description: str | None = None


class ModifyIn(_Body):
    params: dict[str, Any] | None = Field(
        default=None, description="merged into the instance's; null drops one (its default)"
    )
    schedule: dict[str, Any] | None = Field(default=None, description=SCHEDULE_HELP)
    description: str | None = None


class RunIn(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    in_: str | None = Field(default=None, alias="in", description="run in this long, e.g. 5m")
    at: str | None = Field(default=None, description="run at this time (ISO 8601)")
    params: dict[str, Any] | None = Field(
        default=None, description="an instance's params for this run only"
    )


class Templates(BaseModel):
    templates: list[dict[str, Any]]
    total: int


def raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    """A daemon reply as a result, or the HTTP error its kind maps to."""
    if reply.get("ok"):
        result: dict[str, Any] = reply["result"]
        return result
    status = STATUS.get(reply.get("kind", ""), 409)
    detail: dict[str, Any] = {"message": reply.get("error", "failed")}
    for key in ("source", "fields", "problems"):
        if reply.get(key):
            detail[key] = reply[key]
    raise HTTPException(status, detail)


# Roles by method (tokens.required_role): GET read; POST, PATCH, DELETE operate.
router = APIRouter(dependencies=[Depends(authorize)])


@router.get("/templates", response_model=Templates)
async def get_templates(control: Ctl) -> dict[str, Any]:
    """The templates the files declare: parameters (as JSON Schema), limits, instances."""
    found = await asyncio.to_thread(instances.templates, control.store)
    return {"templates": found, "total": len(found)}


@router.get("/templates/{name}")
async def get_template(control: Ctl, name: str) -> dict[str, Any]:
    """One template, with the JSON Schema of its parameters (to build a form from)."""
    try:
        return await asyncio.to_thread(instances.template, control.store, name)
    except TemplateNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post(
    "/templates/{name}/jobs",
    status_code=201,
    responses={
        404: {"description": "no such template"},
        409: {"description": "the id is taken, or limits.max_jobs instances exist"},
        422: {"description": "bad params, or a schedule the limits forbid (names the field)"},
    },
)
async def create_instance(control: Ctl, name: str, body: CreateIn) -> dict[str, Any]:
    """Create a job from a template; answers with the job as ``GET /jobs/{id}`` shows it."""
    request = {
        "op": "create",
        "template": name,
        "job_id": body.id,
        "params": body.params,
        "schedule": body.schedule,
        "description": body.description,
    }
    return raise_for(await control.handle(request))


@router.patch(
    "/jobs/{job_id}",
    responses={
        404: {"description": "no such job"},
        409: {"description": "a file's job: edit its file"},
        422: {"description": "bad params or schedule"},
    },
)
async def modify_instance(control: Ctl, job_id: str, body: ModifyIn) -> dict[str, Any]:
    """Change an instance's params, schedule or description. Its next run is kept unless
    the schedule changed."""
    request = {
        "op": "modify",
        "job_id": job_id,
        "params": body.params,
        "schedule": body.schedule,
        "description": body.description,
    }
    return raise_for(await control.handle(request))


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    responses={
        404: {"description": "no such job"},
        409: {"description": "a file's job: delete it from its file"},
    },
)
async def delete_instance(control: Ctl, job_id: str) -> None:
    """Delete an instance (and its one-off runs still to come)."""
    raise_for(await control.handle({"op": "remove", "job_id": job_id}))


@router.post(
    "/jobs/{job_id}/runs",
    status_code=202,
    responses={404: {"description": "no such job"}, 422: {"description": "bad time or params"}},
)
async def run_once(control: Ctl, job_id: str, body: RunIn | None = None) -> dict[str, Any]:
    """A one-off run of any job, now (``{}``), ``{"in": "5m"}`` or ``{"at": ISO}``; an
    instance may take other ``params`` for this run. Recorded in history like any run."""
    body = body or RunIn()
    request: dict[str, Any] = {"op": "run", "job_id": job_id, "in": body.in_, "at": body.at}
    if body.params:
        request["params"] = body.params
    return raise_for(await control.handle(request))
