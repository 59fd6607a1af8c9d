"""The research app: what the seed's scheduling routes did, on the embedded scheduler.

- ``POST /search``: a recurring search (a query, its sources, and ``cron_expression`` or
  ``interval_hours``): an instance of the ``search`` template;
- ``POST /export``: a recurring export of one search in one format (one per pair);
- after each search run, its analysis runs once, ``RESEARCH_ANALYSIS_DELAY`` later
  (``handlers.search`` creates it);
- ``GET /searches/{id}``: the search, its latest results and its analyses;
  ``POST /searches/{id}/run``: a search run now; ``DELETE /searches/{id}``: stop it;
- ``/scheduler/...``: the scheduler's own API (jobs, runs, pause, resume, status page).

    cd examples/research_app && uvicorn research_app.app:app
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from pydantic import BaseModel, Field, model_validator

from research_app import results
from research_app.config import Config
from scheduler import Scheduler
from scheduler.embed import Refused
from scheduler.errors import JobNotFound, SchedulerError

_running: Scheduler | None = None


def running_scheduler() -> Scheduler:
    """The scheduler of the app that is serving (for the job handlers, which run in it)."""
    if _running is None:
        raise RuntimeError("the research app is not running")
    return _running


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=200, examples=["AI news"])
    sources: list[Literal["google", "bing", "duckduckgo", "arxiv"]] = ["google", "bing"]
    cron_expression: str | None = Field(default=None, examples=["0 9 * * 1-5"])
    interval_hours: int | None = Field(default=None, ge=1, le=24 * 366)

    @model_validator(mode="after")
    def _one_schedule(self) -> SearchIn:
        if (self.cron_expression is None) == (self.interval_hours is None):
            raise ValueError("give exactly one of cron_expression or interval_hours")
        return self


class ExportIn(BaseModel):
    search_id: int = Field(ge=1)
    format: Literal["csv", "json"] = "csv"
    cron_expression: str = Field(examples=["0 8 * * 1"])


class Scheduled(BaseModel):
    job_id: str
    search_id: int
    message: str


def _refused(exc: SchedulerError) -> HTTPException:
    """A scheduler refusal as the app's answer: the status the scheduler's API would give."""
    if isinstance(exc, Refused):
        return HTTPException(exc.status, str(exc))
    return HTTPException(404 if isinstance(exc, JobNotFound) else 422, str(exc))


@dataclass(frozen=True)
class Context:
    sched: Scheduler
    config: Config


def _context(request: Request) -> Context:
    context: Context = request.app.state.research
    return context


Ctx = Annotated[Context, Depends(_context)]
SearchId = Annotated[int, Path(ge=1)]
routes = APIRouter()


@routes.post("/search", status_code=201, response_model=Scheduled)
async def schedule_search(ctx: Ctx, body: SearchIn) -> dict[str, Any]:
    data = ctx.config.data_dir
    search_id = await asyncio.to_thread(results.add_search, data, body.query, list(body.sources))
    schedule = (
        {"cron": body.cron_expression}
        if body.cron_expression is not None
        else {"interval": f"{body.interval_hours}h"}
    )
    try:
        job = await ctx.sched.create(
            "search",
            {"search_id": search_id, "query": body.query, "sources": list(body.sources)},
            schedule,
            id=f"search-{search_id}",
            description=f"Search: {body.query}",
        )
    except SchedulerError as exc:
        await asyncio.to_thread(results.forget_search, data, search_id)
        raise _refused(exc) from None
    return {"job_id": job["id"], "search_id": search_id, "message": "search scheduled"}


@routes.post("/export", status_code=201, response_model=Scheduled)
async def schedule_export(ctx: Ctx, body: ExportIn) -> dict[str, Any]:
    if await asyncio.to_thread(results.get_search, ctx.config.data_dir, body.search_id) is None:
        raise HTTPException(404, f"no search {body.search_id}: POST /search creates one")
    try:
        job = await ctx.sched.create(
            "export",
            {"search_id": body.search_id, "format": body.format},
            {"cron": body.cron_expression},
            id=f"export-{body.search_id}-{body.format}",  # one per search and format
        )
    except SchedulerError as exc:
        raise _refused(exc) from None
    return {"job_id": job["id"], "search_id": body.search_id, "message": "export scheduled"}


@routes.get("/searches/{search_id}")
async def get_search(ctx: Ctx, search_id: SearchId) -> dict[str, Any]:
    found = await asyncio.to_thread(results.get_search, ctx.config.data_dir, search_id)
    if found is None:
        raise HTTPException(404, f"no search {search_id}")
    return found


@routes.post("/searches/{search_id}/run", status_code=202)
async def run_search_now(ctx: Ctx, search_id: SearchId) -> dict[str, Any]:
    try:
        return await ctx.sched.run_once(f"search-{search_id}")
    except SchedulerError as exc:
        raise _refused(exc) from None


@routes.delete("/searches/{search_id}", status_code=204)
async def stop_search(ctx: Ctx, search_id: SearchId) -> None:
    """Stop a search and its exports (its results stay)."""
    exports = [
        j["id"] for j in await ctx.sched.jobs() if j["id"].startswith(f"export-{search_id}-")
    ]
    try:
        for job_id in [f"search-{search_id}", *exports]:
            await ctx.sched.remove(job_id)
    except SchedulerError as exc:
        raise _refused(exc) from None


def create_app(config: Config | None = None) -> FastAPI:
    config = config or Config.from_env()
    # The scheduler logs runs, reconciles and API writes under "scheduler.*".
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sched = Scheduler(jobs_dir=config.jobs_dir, db=config.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        global _running
        config.data_dir.mkdir(parents=True, exist_ok=True)
        async with sched:
            _running = sched
            try:
                yield
            finally:
                _running = None

    app = FastAPI(title="research app", lifespan=lifespan)
    app.state.research = Context(sched, config)
    app.include_router(routes)
    app.include_router(sched.router, prefix="/scheduler")
    return app


app = create_app()
