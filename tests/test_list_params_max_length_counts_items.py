"""On a ``list`` parameter, ``max_length`` is the most items the list may hold, never the
length of each item's text (``['google']`` with ``max_length: 4`` was refused); an item's
text is bounded by ``pattern``. Seen by a user as a create accepted or refused naming the
field, and in the template's JSON Schema (``maxItems``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler import instances
from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.conftest import WriteJobs

TEMPLATE = """\
templates:
  search:
    schedule: {interval: 6h}
    params:
      sources:
        type: list
        max_length: 2
        pattern: "[a-z]{1,10}"
        default: [google, duckduckgo]
    run: {type: command, command: [echo, "${params.sources}"]}
"""


@pytest.fixture
def store(write_jobs: WriteJobs, jobs_dir: Path, db_url: str) -> Iterator[Store]:
    write_jobs("t.yaml", TEMPLATE)  # the default's items are longer than 2: accepted
    opened = Store(db_url)
    reconcile(opened, jobs_dir)
    yield opened
    opened.close()


def _refusal(store: Store, sources: list[str]) -> list[tuple[str, str]]:
    with pytest.raises(instances.InvalidInstance) as caught:
        instances.create(store, "search", {"sources": sources})
    return caught.value.problems


def test_max_length_of_a_list_counts_its_items(store: Store) -> None:
    job = instances.create(store, "search", {"sources": ["google", "bing"]}, job_id="two")
    assert job["params"] == {"sources": ["google", "bing"]}
    assert instances.create(store, "search", {}, job_id="dflt")["params"] == {
        "sources": ["google", "duckduckgo"]
    }
    assert _refusal(store, ["a", "b", "c"]) == [
        ("params.sources", "has 3 items, more than the 2 allowed")
    ]
    assert _refusal(store, ["waytoolongname"]) == [
        ("params.sources", "item 0 does not match the pattern [a-z]{1,10}")
    ]


def test_the_json_schema_says_max_items(store: Store) -> None:
    schema: dict[str, Any] = instances.template(store, "search")["params"]["properties"]
    assert schema["sources"] == {
        "type": "array",
        "items": {"type": "string", "pattern": "[a-z]{1,10}"},
        "maxItems": 2,
        "default": ["google", "duckduckgo"],
    }
