"""Rendering a template puts each parameter value where the template says and nowhere else:
a command item stays one argument (a list parameter: one argument per item), a url part is
percent-encoded, the http handler's ``${VAR}`` expansion never sees a value, a header
value cannot hold a line break, and python kwargs keep their types."""

from __future__ import annotations

import pytest

from scheduler.templates import RenderProblem, render

HOSTILE = "a b; rm -rf / ${HOME} $(id)\n--output=/etc/passwd"


def test_command_items_stay_whole_arguments() -> None:
    body = {
        "run": {
            "type": "command",
            "command": [
                "prog",
                "${params.q}",
                "-n=${params.n}",
                "${params.tags}",
                "${params.unset}",
            ],
        }
    }
    rendered = render(body, {"q": HOSTILE, "n": 3, "tags": ["x", "y z"], "unset": None})
    assert rendered["run"]["command"] == ["prog", HOSTILE, "-n=3", "x", "y z"]


def test_http_values_are_encoded_and_escaped() -> None:
    body = {
        "run": {
            "type": "http",
            "url": "https://api.example/search?q=${params.q}",
            "headers": {"X-Query": "${params.h}"},
            "json": {"query": "${params.q}", "limit": "${params.n}"},
        }
    }
    rendered = render(body, {"q": "${SECRET}&x=1/", "h": "plain ${TOKEN}", "n": 5})["run"]
    assert rendered["url"] == "https://api.example/search?q=%24%7BSECRET%7D%26x%3D1%2F"
    assert rendered["headers"] == {"X-Query": "plain $${TOKEN}"}
    assert rendered["json"] == {"query": "$${SECRET}&x=1/", "limit": 5}
    with pytest.raises(RenderProblem, match="line break"):
        render(body, {"q": "x", "h": "a\r\nX-Admin: 1", "n": 1})


def test_python_kwargs_keep_their_types_and_nothing_else_is_touched() -> None:
    body = {
        "description": "${params.q}",
        "run": {
            "type": "python",
            "function": "m:f",
            "kwargs": {"q": "${params.q}", "n": "${params.n}"},
        },
    }
    rendered = render(body, {"q": HOSTILE, "n": 7})
    assert rendered["run"]["kwargs"] == {"q": HOSTILE, "n": 7}
    assert rendered["description"] == "${params.q}"  # validate refuses it there anyway
