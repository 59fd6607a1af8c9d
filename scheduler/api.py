"""The daemon's HTTP API, status page and metrics (FastAPI, served by uvicorn on the
daemon's own event loop). Files stay the source of truth: jobs are listed, triggered,
paused and resumed here; only instances of templates the files declare are created and
deleted here (``api_instances``).

It talks to the daemon only through the ``Control`` protocol, so it imports neither the
daemon nor the reconciler. Caller: ``daemon`` (``--http``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy import select, text

from scheduler import __version__
from scheduler.api_auth import BINDING, Binding, authorize, control_of, local_clients_only
from scheduler.api_instances import router as instance_routes
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.history import BadCursor, runs_page
from scheduler.http_guard import RequestGuard, is_loopback
from scheduler.jobpage import FIRES, page_context, visible
from scheduler.lookup import RunNotFound, find_run, job_detail
from scheduler.metrics import CONTENT_TYPE, Metrics
from scheduler.remote_plan import SPECS_PER_REQUEST, stored_index, stored_specs
from scheduler.service import list_jobs
from scheduler.settings import Settings
from scheduler.store import Store
from scheduler.tokens import TOKEN_ENV, TOKENS_ENV, Access, Role, requires

HTTP_ENV = "SCHEDULER_HTTP"
TEMPLATES = Path(__file__).parent / "templates"
STATUS_CODES = {
    "JobNotFound": 404,
    "InvalidJobFiles": 422,
    "EmptyJobsDir": 409,
    "TemplateHasInstances": 409,
}


class Control(Protocol):
    """What the API needs from the daemon."""

    store: Store
    settings: Settings
    metrics: Metrics
    last_reconcile: dict[str, Any]

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def unhealthy(self) -> str | None: ...


class BindError(SchedulerError):
    """The HTTP address is unusable or unsafe."""


def parse_bind(value: str, access: Access | None) -> tuple[str, int]:
    """``HOST:PORT`` or just ``PORT`` (then 127.0.0.1). A non-loopback address without an
    API token is refused: it would hand the scheduler to anyone on the network."""
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise BindError(
            f"--http {value!r}: expected HOST:PORT or PORT, e.g. 127.0.0.1:8080"
        ) from None
    if access is None and not is_loopback(host):
        raise BindError(
            f"refusing to serve the API on {host} without {TOKEN_ENV} or {TOKENS_ENV}: set a "
            "token, or bind to 127.0.0.1"
        )
    return host, port


class Job(BaseModel):
    id: str
    description: str
    schedule: str
    handler: str
    next_run_time: str | None
    paused: bool
    paused_by: str | None
    state: str
    source: str = Field(description="the file and line declaring it, or `template NAME`")
    origin: str = Field(default="file", description="file, or template (an instance)")
    template: str | None = Field(default=None, description="an instance's template")
    params: dict[str, Any] | None = Field(default=None, description="an instance's params")
    last_outcome: str | None
    last_run_time: str | None
    # Only for jobs that declare expect (absent otherwise, as in `scheduler jobs -o json`).
    expect: str | None = Field(default=None, description="expect.succeeds_within")
    last_success_time: str | None = None
    overdue: bool | None = Field(default=None, description="no success within expect's window")


class JobDetail(Job):
    spec: dict[str, Any]
    next_fire_times: list[str] = Field(description="the next fire times, none while paused")


class Jobs(BaseModel):
    jobs: list[Job]
    total: int


class Run(BaseModel):
    run_id: str
    job_id: str
    scheduled_time: str | None
    started_at: str
    finished_at: str | None
    outcome: str = Field(
        description="running, success, failure, timeout, interrupted, skipped, missed, or "
        "sent (handed to Celery without a result backend)"
    )
    exit_code: int | None
    attempt: int
    output_tail: str | None
    error: str | None
    task_id: str | None = Field(default=None, description="the Celery task id, if handed over")
    worker: str | None = Field(default=None, description="the Celery worker that ran it")


class Action(BaseModel):
    id: str
    result: dict[str, Any]


class PlanOut(BaseModel):
    add: list[str]
    update: list[dict[str, Any]]
    remove: list[str]
    unchanged: list[str]
    applied: bool | None = None
    details: dict[str, Any] = Field(description="the plan with sources and field values")


def _raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok"):
        result: dict[str, Any] = reply["result"]
        return result
    status = STATUS_CODES.get(reply.get("kind", ""), 409)
    detail: Any = reply.get("error", "failed")
    if reply.get("problems"):
        detail = {
            "message": "invalid job files: nothing was changed",
            "problems": reply["problems"],
            "lines": [
                f"{p['path']}:{p['line']}:{p['col']}: {p['message']}" for p in reply["problems"]
            ],
        }
    raise HTTPException(status_code=status, detail=detail)


Ctl = Annotated[Control, Depends(control_of)]
router = APIRouter(dependencies=[Depends(authorize)])
open_router = APIRouter()  # /healthz: for load balancers and probes, no token


def bound_router(control: Control, access: Access | None, *, local_only: bool = False) -> APIRouter:
    """The whole API for one scheduler, mountable in any FastAPI app
    (``app.include_router(bound_router(...), prefix="/scheduler")``). ``local_only``: answer
    only local, same-origin clients (what ``RequestGuard`` does for ``create_app``)."""

    async def bind(request: Request) -> None:  # async: no threadpool hop per request
        request.scope[BINDING] = Binding(control, access)

    guards = [Depends(bind), *([Depends(local_clients_only)] if local_only else [])]
    outer = APIRouter(dependencies=guards)
    outer.include_router(open_router)
    outer.include_router(router)
    outer.include_router(instance_routes)  # guarded by its own authorize
    return outer


def _find(control: Control, job_id: str) -> dict[str, Any]:
    found = list_jobs(control.store, job_id)
    if not found:
        raise HTTPException(404, f"no job '{job_id}': GET /jobs lists them")
    return found[0]


@router.get("/jobs", response_model=Jobs, response_model_exclude_unset=True)
async def get_jobs(
    control: Ctl,
    overdue: Annotated[
        bool | None, Query(description="only jobs that are (true) or are not (false) overdue")
    ] = None,
    template: Annotated[str | None, Query(description="only instances of this template")] = None,
) -> dict[str, Any]:
    listing = await asyncio.to_thread(list_jobs, control.store, None, template)
    if overdue is not None:
        listing = [job for job in listing if job.get("overdue", False) is overdue]
    return {"jobs": listing, "total": len(listing)}


@router.get(
    "/jobs/{job_id}",
    response_model=JobDetail,
    response_model_exclude_unset=True,
    responses={200: {"content": {"text/html": {}}, "description": "HTML for Accept: text/html"}},
)
async def get_job(
    control: Ctl,
    job_id: str,
    request: Request,
    fires: Annotated[int, Query(ge=0, le=100)] = 5,
) -> Any:
    """The job as JSON, or its page when the client asks for HTML (a browser)."""
    if "text/html" in request.headers.get("accept", ""):
        return await job_page(control, job_id)
    try:
        return await asyncio.to_thread(job_detail, control.store, job_id, fires)
    except JobNotFound:
        raise HTTPException(404, f"no job '{job_id}': GET /jobs lists them") from None


Limit = Annotated[int, Query(ge=1, le=1000)]
Before = Annotated[
    str | None,
    Query(description="a cursor from the previous page's Link header (rel=next): older runs"),
]


async def _runs_page(
    control: Control,
    request: Request,
    response: Response,
    job_id: str | None,
    limit: int,
    before: str | None,
) -> list[dict[str, Any]]:
    """A page of runs; the next one's URL goes in a ``Link: <...>; rel="next"`` header (the
    body stays a list, as before paging)."""
    try:
        page, following = await asyncio.to_thread(runs_page, control.store, job_id, limit, before)
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    if following is not None:
        query = urlencode({**request.query_params, "before": following})
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return page


@router.get("/jobs/{job_id}/runs", response_model=list[Run])
async def get_runs(
    control: Ctl,
    job_id: str,
    request: Request,
    response: Response,
    limit: Limit = 20,
    before: Before = None,
) -> list[dict[str, Any]]:
    """The job's runs, newest first; the Link header (rel=next) points at older ones."""
    await asyncio.to_thread(_find, control, job_id)
    return await _runs_page(control, request, response, job_id, limit, before)


@router.get("/runs", response_model=list[Run])
async def get_all_runs(
    control: Ctl, request: Request, response: Response, limit: Limit = 20, before: Before = None
) -> list[dict[str, Any]]:
    """Every job's runs, newest first; the Link header (rel=next) points at older ones."""
    return await _runs_page(control, request, response, None, limit, before)


@router.get("/runs/{run_id}", response_model=Run)
async def get_run(control: Ctl, run_id: str) -> dict[str, Any]:
    """One run (try) with its whole kept output; a unique prefix of its id will do."""
    try:
        return await asyncio.to_thread(find_run, control.store, run_id)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from None


async def _act(control: Control, op: str, job_id: str) -> dict[str, Any]:
    reply = await control.handle({"op": op, "job_id": job_id})
    return {"id": job_id, "result": _raise_for(reply)}


@router.post("/jobs/{job_id}/trigger", response_model=Action)
async def trigger(control: Ctl, job_id: str) -> dict[str, Any]:
    """Run the job now (its concurrency policy still applies)."""
    return await _act(control, "trigger", job_id)


@router.post("/jobs/{job_id}/pause", response_model=Action)
async def pause(control: Ctl, job_id: str) -> dict[str, Any]:
    """Pause until resumed; kept across reconciles and restarts."""
    return await _act(control, "pause", job_id)


@router.post("/jobs/{job_id}/resume", response_model=Action)
async def resume(control: Ctl, job_id: str) -> dict[str, Any]:
    return await _act(control, "resume", job_id)


async def _plan(control: Control, apply: bool, allow_orphan_delete: bool = False) -> dict[str, Any]:
    request = {"op": "reconcile", "dry_run": not apply, "allow_orphan_delete": allow_orphan_delete}
    details = _raise_for(await control.handle(request))
    return {
        "add": [a["id"] for a in details["add"]],
        "update": [
            {"id": u["id"], "fields": [c["field"] for c in u["changes"]]} for u in details["update"]
        ],
        "remove": [r["id"] for r in details["remove"]],
        "unchanged": details["unchanged"],
        "applied": details.get("applied") if apply else None,
        "details": details,
    }


@router.get("/plan", response_model=PlanOut)
async def get_plan(control: Ctl) -> dict[str, Any]:
    """What a reconcile would change now; changes nothing."""
    return await _plan(control, apply=False)


class StoreIndex(BaseModel):
    jobs: dict[str, dict[str, Any]] = Field(
        description="every stored job's fingerprint, source and operator pause, by id"
    )


class SpecsIn(BaseModel):
    ids: list[str] = Field(max_length=SPECS_PER_REQUEST)


class SpecsOut(BaseModel):
    specs: dict[str, dict[str, Any]]


@router.get("/store/jobs", response_model=StoreIndex)
async def get_store_index(control: Ctl) -> dict[str, Any]:
    """What `scheduler --url URL plan` needs to plan the caller's own files against this
    store (it plans locally, like `kubectl diff -f`); changes nothing."""
    return {"jobs": await asyncio.to_thread(stored_index, control.store)}


@router.post("/store/specs", response_model=SpecsOut)
@requires(Role.read)  # a read in POST's clothing: `plan --url` needs it
async def post_store_specs(control: Ctl, body: SpecsIn) -> dict[str, Any]:
    """The stored specs of the given job ids (unknown ids left out); changes nothing."""
    return {"specs": await asyncio.to_thread(stored_specs, control.store, body.ids)}


@router.post(
    "/reconcile",
    response_model=PlanOut,
    responses={422: {"description": "an invalid job file: nothing was changed"}},
)
@requires(Role.admin)
async def post_reconcile(
    control: Ctl,
    allow_orphan_delete: Annotated[
        bool, Query(description="remove a removed template's instances with it")
    ] = False,
) -> dict[str, Any]:
    return await _plan(control, True, allow_orphan_delete)


@open_router.get("/healthz", responses={503: {"description": "unhealthy, with why"}})
async def healthz(control: Ctl) -> JSONResponse:
    problem = control.unhealthy()
    if problem is None:
        try:
            await asyncio.to_thread(_ping, control.store)
        except Exception as exc:
            problem = f"the store does not answer: {type(exc).__name__}: {exc}"
    role = _role(control)
    if problem:
        return JSONResponse({"detail": problem, **role}, status_code=503)
    return JSONResponse({"status": "ok", **role})


def _role(control: Control) -> dict[str, Any]:
    """Leader or standby, epoch, lease age and who leads (daemons with a leadership)."""
    role = getattr(control, "role", None)
    return dict(role()) if callable(role) else {}


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": __version__}


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI document: behind the token like the API it describes."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    base = request.url.path.removesuffix("/docs")  # mounted under a prefix in an app, too
    return get_swagger_ui_html(openapi_url=f"{base}/openapi.json", title="scheduler API")


@router.get("/metrics", response_class=Response)
async def metrics(control: Ctl) -> Response:
    """Prometheus text format."""
    body = await asyncio.to_thread(control.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


_pages = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _when(iso: str | None) -> str:
    """ISO 8601 as people read it: to the second, offset kept."""
    return datetime.fromisoformat(iso).isoformat(sep=" ", timespec="seconds") if iso else ""


_pages.filters["when"] = _when
_pages.filters["visible"] = visible


STRIP_RUNS = 20  # per job on the status page
STRIP_SCAN = 5000  # newest runs looked at to fill the strips


def _strips(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Each job's newest runs, oldest last: outcome, start, Celery task. Output tails are never
    read for the page (5,000 of them, 64 KiB each, made 20 loads peak at 1.9 GB)."""
    runs = store.runs
    query = (
        select(runs.c.job_id, runs.c.outcome, runs.c.started_at, runs.c.task_id, runs.c.worker)
        .order_by(runs.c.started_at.desc(), runs.c.attempt.desc())
        .limit(STRIP_SCAN)
    )
    strips: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            strip = strips.setdefault(row.job_id, [])
            if len(strip) < STRIP_RUNS:
                started = datetime.fromtimestamp(row.started_at, UTC)
                strip.append(
                    {
                        "outcome": row.outcome,
                        # As ``when`` shows times, formatted here: 5,000 round trips
                        # through ISO text were a fifth of the page's time.
                        "started": started.isoformat(sep=" ", timespec="seconds"),
                        "task_id": row.task_id,  # a Celery run's, shown with its last run
                        "worker": row.worker,
                    }
                )
    return strips


def _render_status(control: Control) -> str:
    strips = _strips(control.store)
    jobs = sorted(list_jobs(control.store), key=lambda job: not job.get("overdue"))  # stable
    page: str = _pages.get_template("status.html").render(
        jobs=jobs,
        strips=strips,
        reconcile=control.last_reconcile,
        version=__version__,
        jobs_dir=str(control.settings.jobs_dir),
        role=_role(control),
    )
    return page


def _render_job(control: Control, job_id: str) -> str:
    try:
        detail = job_detail(control.store, job_id, FIRES)
    except JobNotFound:
        raise HTTPException(404, f"no job '{job_id}': GET /jobs lists them") from None
    page: str = _pages.get_template("job.html").render(**page_context(control.store, detail))
    return page


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(control: Ctl, job_id: str) -> HTMLResponse:
    """One job for people: as declared, next fire times, last 50 runs, a duration chart."""
    return HTMLResponse(await asyncio.to_thread(_render_job, control, job_id))


@router.get("/", response_class=HTMLResponse)
async def status_page(control: Ctl) -> HTMLResponse:
    """A read-only status page that refreshes itself."""
    return HTMLResponse(await asyncio.to_thread(_render_status, control))


def create_app(
    control: Control, token: str | None = None, *, access: Access | None = None
) -> FastAPI:
    """The API of one daemon: ``access`` (the tokens it accepts), else one admin ``token``,
    else $SCHEDULER_API_TOKEN and $SCHEDULER_API_TOKENS."""
    if access is None:
        access = Access.load(token=token) if token else Access.from_env()
    app = FastAPI(
        title="scheduler",
        version=__version__,
        description="The API of a declarative job scheduler daemon. Job files are "
        "the source of truth: jobs are declared there, and so are the templates from which "
        "jobs may be created here.",
        openapi_url=None,  # served by the token-guarded router instead
        docs_url=None,
        redoc_url=None,
    )
    app.state.control = control
    app.add_middleware(RequestGuard, local_only=access is None)
    app.include_router(bound_router(control, access))
    return app


def _ping(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class ApiServer(uvicorn.Server):
    """uvicorn on the daemon's own loop; the daemon keeps its signal handlers."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        super().__init__(
            uvicorn.Config(
                app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
            )
        )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def bound_port(self) -> int:
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port
