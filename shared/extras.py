"""Optional dependencies: the pip extras of ``rag-explorer`` and the error for a missing one.

The base install (click, pydantic, numpy, pypdf) runs every ``--help``, remote mode (``--endpoint``)
and the Python client. Everything else comes with an extra (``pyproject.toml`` lists their packages):

- ``local``: the offline CLI (ChromaDB, BM25, the numpy MiniLM embedder, stemming, ``serve``), with
  ``report``;
- ``report``: ``rag-explorer report`` (gap clustering, the HTML report's charts);
- ``aws``: the AWS adapters (OpenSearch store, Bedrock, DynamoDB, Secrets Manager, ``push``);
- ``cloud``: hosted model APIs (the OpenAI and Anthropic SDKs).

Every place that imports an optional package does it lazily, inside :func:`needs_extra`, which turns
the import's failure into a :class:`MissingExtraError` naming the extra to install; :func:`require`
checks for packages without importing them.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Literal

from shared.errors import RagExplorerError

__all__ = ["DISTRIBUTION", "Extra", "MissingExtraError", "install_command", "needs_extra", "require"]

#: The distribution's name on PyPI (``pip install rag-explorer``).
DISTRIBUTION = "rag-explorer"
Extra = Literal["local", "report", "aws", "cloud"]
#: This project's own top-level packages: a failed import of one of them is a bug, not a missing extra.
_OWN = frozenset({"shared", "local_cli", "functions"})


def install_command(extra: str) -> str:
    """The exact command that installs ``extra`` (quoted for every shell)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class MissingExtraError(RagExplorerError, ImportError):
    """An optional package is not installed. Still an :class:`ImportError`, so callers that fall back
    when a module is missing keep doing so; the CLI turns it into a user error naming the command."""

    def __init__(self, extra: str, module: str, feature: str) -> None:
        self.extra, self.module, self.feature = extra, module, feature
        super().__init__(
            f"{feature} needs the [{extra}] extra ({module} is not installed): {install_command(extra)}"
        )
        self.name = module

    def for_command(self, command: str) -> str:
        """The message for a command line, e.g. ``rag-explorer ingest needs the [local] extra ...``."""
        return (
            f"{command} needs the [{self.extra}] extra for {self.feature} ({self.module} is not installed): "
            f"{install_command(self.extra)}"
        )


@contextlib.contextmanager
def needs_extra(extra: Extra, feature: str) -> Iterator[None]:
    """Wrap the lazy import of an optional package::

        with needs_extra("local", "the local index"):
            import chromadb

    A module that is not installed (``ModuleNotFoundError``, also what ``sys.modules[name] = None``
    gives) becomes a :class:`MissingExtraError`; a missing module of this project itself, and any other
    error, goes through unchanged.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        if not module or module in _OWN:
            raise
        raise MissingExtraError(extra, module, feature) from exc


def require(extra: Extra, feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` if one of ``modules`` is not installed, without importing any:
    for a check that must come before a slower one (the extra before the model weights)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            found = False
        if not found:
            raise MissingExtraError(extra, module, feature)
