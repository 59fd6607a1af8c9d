"""The ``http`` handler: send one request and check the response status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from scheduler.handlers.base import HandlerArgs, HandlerType


class HttpArgs(HandlerArgs):
    """Send an HTTP request; the status and a body excerpt are recorded with the run."""

    url: str = Field(pattern=r"^https?://[^\s/]+", description="http:// or https:// URL")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="sent as JSON")
    body: str | None = Field(default=None, description="sent as is")
    expect_status: list[int] = Field(
        default_factory=list,
        description="statuses that count as success (default: any 2xx)",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("expect_status")
    @classmethod
    def _real_statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status (100-599)")
        return value

    @model_validator(mode="after")
    def _one_payload(self) -> HttpArgs:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


HANDLER = HandlerType("http", HttpArgs, description=HttpArgs.__doc__ or "")
