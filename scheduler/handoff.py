"""What reaches the leader through the store: operator requests and a change counter.

A standby, or a command line that reaches no daemon socket (another host, another
``XDG_RUNTIME_DIR``), records ``pause``/``resume``/``trigger``/``reconcile`` as a row in
``scheduler_requests``; the leader takes each row once, carries it out as if asked on its
own socket, and writes the reply back, which the asker waits for. Anything that writes the
store behind the daemon bumps the ``changes`` counter, which the leader compares on every
pass so it never keeps firing from a stale picture.
Callers: ``daemon`` (leader: ``pending``/``answer``/``changes``; standby: ``ask``),
``service`` (command lines: ``ask``, ``bump``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from scheduler import schema
from scheduler.control import StoreBusy
from scheduler.leadership import LeaseRow, read_lease
from scheduler.store import Store

CHANGES = "changes"
REQUEST_TTL = 300.0  # a request no leader took by then is answered "expired"


def bump(store: Store) -> None:
    """Tell the leader that the store changed behind its back."""
    state = schema.state
    for _ in range(3):
        try:
            with store.write() as conn:
                done = conn.execute(
                    update(state).where(state.c.name == CHANGES).values(value=state.c.value + 1)
                )
                if not done.rowcount:
                    conn.execute(state.insert().values(name=CHANGES, value=1))
            return
        except IntegrityError:  # two first bumps at once: the other inserted, update it
            continue


def changes(store: Store) -> int:
    state = schema.state
    with store.engine.connect() as conn:
        value = conn.execute(select(state.c.value).where(state.c.name == CHANGES)).scalar()
    return int(value or 0)


def record(store: Store, request: dict[str, Any]) -> int:
    requests = schema.requests
    args = {k: v for k, v in request.items() if k not in ("op", "job_id")}
    with store.write() as conn:
        result = conn.execute(
            requests.insert().values(
                op=str(request.get("op")),
                job_id=str(request.get("job_id") or ""),
                args=json.dumps(args),
                requested_at=time.time(),
            )
        )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def reply_to(store: Store, request_id: int) -> dict[str, Any] | None:
    requests = schema.requests
    with store.engine.connect() as conn:
        row = conn.execute(select(requests.c.result).where(requests.c.id == request_id)).first()
    if row is None or row.result is None:
        return None
    reply: dict[str, Any] = json.loads(row.result)
    return reply


def withdraw(store: Store, request_id: int) -> bool:
    """Take back a request no leader took; False if one took it meanwhile."""
    requests = schema.requests
    with store.write() as conn:
        done = conn.execute(
            update(requests)
            .where(requests.c.id == request_id, requests.c.taken_at.is_(None))
            .values(taken_at=time.time(), result=json.dumps({"ok": False, "withdrawn": True}))
        )
    return bool(done.rowcount)


async def ask(
    store: Store, request: dict[str, Any], timeout: float, *, until_no_leader: bool = False
) -> dict[str, Any] | None:
    """Record ``request`` for the leader and wait for its reply; None if no leader took it
    in ``timeout`` seconds, or (``until_no_leader``) as soon as no daemon leads. The request
    is then withdrawn, so it never runs later."""
    request_id = await asyncio.to_thread(record, store, request)
    deadline = time.monotonic() + timeout
    while True:
        reply = await asyncio.to_thread(reply_to, store, request_id)
        if reply is not None:
            return reply
        gone = until_no_leader and await asyncio.to_thread(live_leader, store) is None
        if (gone or time.monotonic() > deadline) and await asyncio.to_thread(
            withdraw, store, request_id
        ):
            return None
        await asyncio.sleep(0.05)


def look(store: Store, now: float | None = None) -> tuple[int, list[dict[str, Any]]]:
    """The leader's pass (two reads when idle): the change counter, and the requests
    nobody took yet, each taken exactly once (even by two leaders)."""
    requests, state = schema.requests, schema.state
    now = now or time.time()
    taken: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        count = conn.execute(select(state.c.value).where(state.c.name == CHANGES)).scalar()
        rows = conn.execute(
            select(requests).where(requests.c.taken_at.is_(None)).order_by(requests.c.id)
        ).all()
    for row in rows:
        with store.write() as conn:
            done = conn.execute(
                update(requests)
                .where(requests.c.id == row.id, requests.c.taken_at.is_(None))
                .values(taken_at=now)
            )
        if not done.rowcount:
            continue
        if now - row.requested_at > REQUEST_TTL:
            answer(store, row.id, {"ok": False, "error": "expired: no leader took it in time"})
            continue
        taken.append({"id": row.id, "op": row.op, "job_id": row.job_id, **json.loads(row.args)})
    return int(count or 0), taken


def prune(store: Store, now: float | None = None) -> int:
    """Forget requests answered long ago (the leader, when it takes the lead)."""
    requests = schema.requests
    with store.write() as conn:
        done = conn.execute(
            requests.delete().where(requests.c.taken_at < (now or time.time()) - REQUEST_TTL)
        )
    return int(done.rowcount or 0)


def answer(store: Store, request_id: int, reply: dict[str, Any]) -> None:
    requests = schema.requests
    with store.write() as conn:
        conn.execute(
            update(requests)
            .where(requests.c.id == request_id)
            .values(result=json.dumps(reply, default=str))
        )


def live_leader(store: Store) -> LeaseRow | None:
    """The lease row of a daemon that leads this store now, on any host."""
    try:
        row = read_lease(store.engine)
    except SQLAlchemyError:
        return None
    return row if row is not None and row.remaining > 0 else None


def ask_leader(store: Store, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """From a command line that reaches no daemon socket: have the leader act. Raises
    ``StoreBusy`` naming the leader when it does not answer (its lease ran out, or it is
    busy), so the operator knows where ``--url`` should point."""

    leader = live_leader(store)
    reply = asyncio.run(ask(store, request, timeout, until_no_leader=True))
    if reply is None:
        who = leader.holder if leader else "the leader"
        where = f" at {leader.address}" if leader and leader.address else ""
        raise StoreBusy(
            f"{who}{where} leads this store but did not take the request: check it, or "
            f"act through its API with `scheduler --url URL {request.get('op')} ...`"
        )
    return reply
