"""Request bodies as the API reads them: strict models, the body size limit, and JSON without NaN."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, model_validator

from shared import feedback, models
from shared.models import FieldError

MAX_BODY_BYTES = 64 * 1024


def _integral_floats(data: Any, fields: tuple[str, ...]) -> Any:
    """JSON Schema counts 1.0 as an integer; strict pydantic does not: accept integral floats there."""
    if isinstance(data, dict):
        for name in fields:
            value = data.get(name)
            if isinstance(value, float) and value.is_integer():
                data = {**data, name: int(value)}
    return data


class QueryRequest(models.QueryRequest):
    """:class:`shared.models.QueryRequest`, validated strictly: JSON types are not coerced.

    Same name, so that the OpenAPI component keeps the model's name.
    """

    model_config = ConfigDict(extra="forbid", strict=True, title="QueryRequest")

    @model_validator(mode="before")
    @classmethod
    def _integers(cls, data: Any) -> Any:
        return _integral_floats(data, ("max_chunks",))


class SearchRequest(models.SearchRequest):
    """:class:`shared.models.SearchRequest`, validated strictly: JSON types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SearchRequest")

    @model_validator(mode="before")
    @classmethod
    def _integers(cls, data: Any) -> Any:
        return _integral_floats(data, ("k",))


class FeedbackRequest(feedback.FeedbackRequest):
    """:class:`shared.feedback.FeedbackRequest`, validated strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, title="FeedbackRequest")


class PayloadTooLargeError(Exception):
    """The request body is larger than the API accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the request body is {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class FieldValidationError(Exception):
    """A field broke a rule that only the running service knows (e.g. the configured question length)."""

    def __init__(self, loc: list[str | int], type_: str, msg: str) -> None:
        super().__init__(msg)
        self.error = FieldError(loc=loc, type=type_, msg=msg)


def _not_json(name: str) -> Any:
    """``json.loads`` takes NaN and Infinity; JSON does not."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def json_loads(limit: int) -> Any:
    def loads(data: str | bytes | bytearray) -> Any:
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if size > limit:
            raise PayloadTooLargeError(size, limit)
        return json.loads(data, parse_constant=_not_json)

    return loads
