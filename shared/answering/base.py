"""The answerer port: what the service needs of anything that turns retrieved passages into an answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from shared.models import AskResponse
    from shared.retrieval import Retrieved


@runtime_checkable
class Answerer(Protocol):
    name: str

    def answer(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> AskResponse:
        """An answer with citations, or a refusal with reasons; ``provider`` names what produced it."""
        ...

    def stream(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> Iterator[str | AskResponse]:
        """Text as it is produced (possibly none), then the final response, last."""
        ...
