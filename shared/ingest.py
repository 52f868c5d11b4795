"""Ingestion: load → chunk → embed → upsert, file by file, never stopped by one bad file.

Re-ingesting an unchanged document is a no-op (same content hash). A changed document keeps the
vectors of the chunks it still has (same chunk id), embeds only the new ones and deletes the rest, so
no orphans remain.

Documents go to one collection (:class:`Placement`), and their chunks link to the public page: the address
the document gives itself (front matter ``url:``, a canonical link, a record's ``url``), else the
collection's URL template applied to the file's path in the ingested folder or collection, else none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.chunking import Chunker, embedding_text
from shared.embeddings.base import Embedder
from shared.errors import ConfigError, LoaderError
from shared.loaders._common import LoadLimits
from shared.models import (
    COLLECTION_PATTERN,
    DEFAULT_COLLECTION,
    Chunk,
    Document,
    FileReport,
    IngestSummary,
    RemoveSummary,
)
from shared.settings import DEFAULTS
from shared.sites import page_url
from shared.stores.base import VectorStore

ProgressCallback = Callable[[Path, FileReport], None]


@dataclass
class _Pending:
    chunks: list[Chunk] = field(default_factory=list)
    reused: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where ingested documents go: their collection, and the template of its pages' public URLs
    (``CollectionSettings.url_template``, e.g. ``https://docs.example.com/{path}``)."""

    collection: str = DEFAULT_COLLECTION
    url_template: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(COLLECTION_PATTERN, self.collection):
            raise ConfigError(
                f"invalid collection name {self.collection[:80]!r}: 1-63 lower-case letters, digits, "
                "- and _, starting with a letter or digit"
            )

    def page_of(self, doc: Document, relative_path: str | None) -> str | None:
        """The public address of ``doc``: its own, else the template applied to ``relative_path`` (the
        file's path in the folder or collection), else None. A JSON Lines record is not a page of its
        file: it has only the ``url`` it names."""
        if doc.url:
            return doc.url
        if self.url_template and relative_path and doc.doc_type != "jsonl":
            return page_url(self.url_template, relative_path)
        return None

    def version(self, doc: Document, chunker_signature: str, page: str | None) -> str:
        """The version of ``doc`` as indexed here: its content and the chunking settings, and, once it has
        a collection other than the default or a public address, those and its anchors too. Changing any
        of them re-indexes it (a document in the default collection without links keeps the version
        releases before collections gave it, so upgrading re-indexes nothing)."""
        parts = [doc.content_hash, chunker_signature]
        if self.collection != DEFAULT_COLLECTION or page is not None:
            anchors = json.dumps([s.anchor for s in doc.sections]) if page is not None else ""
            parts += [self.collection, page or "", anchors]
        return hashlib.sha256("|".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def path_in_folder(path: Path, folders: Sequence[Path]) -> str:
    """A file's path inside the deepest given folder that holds it (``/`` separated), else its name."""
    absolute = Path(os.path.abspath(path))
    best: Path | None = None
    for folder in folders:
        root = Path(os.path.abspath(folder))
        if absolute.is_relative_to(root) and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return absolute.relative_to(best).as_posix() if best is not None else absolute.name


def source_for(path: Path) -> str:
    """The identity of a file in the index: its absolute, normalised path (a looping link: as given)."""
    try:
        return str(path.expanduser().resolve())
    except RuntimeError:  # a symlink loop; link_problem reports it as skipped
        return str(path.expanduser().absolute())


def duplicate_files(paths: Sequence[Path]) -> dict[Path, Path]:
    """The paths that name the same file as another one of ``paths`` (a symlink to it), each mapped to
    that one: the file that is not a link if there is one, else the first. Indexing it again would only
    find it "unchanged"."""
    by_source: dict[str, list[Path]] = {}
    for path in paths:
        by_source.setdefault(source_for(path), []).append(path)
    duplicates: dict[Path, Path] = {}
    for same in by_source.values():
        if len(same) > 1:
            original = next((p for p in same if not p.is_symlink()), same[0])
            duplicates.update({p: original for p in same if p is not original})
    return duplicates


class Ingestor:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        chunker: Chunker,
        *,
        max_file_bytes: int = DEFAULTS.max_file_bytes,
        embed_batch: int = 256,
        limits: LoadLimits | None = None,
        on_embedded: Callable[[Sequence[Chunk]], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.embed_batch = embed_batch
        #: bounds on the work one untrusted file may cause (``LoadLimits.from_settings(settings)``)
        self.limits = limits or LoadLimits()
        #: told of every batch of newly embedded chunks (the service embeds their sentences ahead)
        self.on_embedded = on_embedded

    # ------------------------------------------------------------------ files

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        on_file: ProgressCallback | None = None,
        files: Sequence[Path] | None = None,
        placement: Placement | None = None,
    ) -> IngestSummary:
        """Ingest files and folders (recursively) into ``placement``'s collection (default: the default
        collection, no URL template). With ``prune``, documents previously ingested from under the given
        folders whose file is gone are removed."""
        from shared.loaders import iter_files

        started = time.perf_counter()
        summary = IngestSummary()
        known = self.store.source_hashes()
        todo = list(files) if files is not None else list(iter_files(paths))
        folders = [p for p in paths if p.is_dir()]
        duplicates = duplicate_files(todo)
        for path in todo:
            original = duplicates.get(path)
            if original is not None:
                reason = f"same file as {original} (through a symlink): indexed once, under that name"
                report = FileReport(path=str(path), status="skipped", reason=reason)
            else:
                report = self._ingest_file(path, known, folders, placement)
            self._add(summary, report)
            if on_file:
                on_file(path, report)
        if prune:
            present = {source_for(p) for p in todo}
            roots = [source_for(p) for p in paths if p.is_dir()]
            for source in sorted(known):
                if source not in present and any(source.startswith(r.rstrip("/") + "/") for r in roots):
                    removed = self.store.delete_source(source)
                    report = FileReport(
                        path=source, status="removed", chunks=removed, reason="file no longer exists"
                    )
                    summary.documents_removed += 1
                    summary.chunks_removed += removed
                    summary.files.append(report)
        self.store.flush()
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    @staticmethod
    def _add(summary: IngestSummary, report: FileReport) -> None:
        summary.files_seen += 1
        summary.files.append(report)
        if report.status == "indexed":
            summary.files_indexed += 1
            summary.documents_indexed += report.documents
            summary.chunks_added += report.chunks
        elif report.status == "unchanged":
            summary.files_unchanged += 1
        elif report.status == "skipped":
            summary.files_skipped += 1
        else:
            summary.files_failed += 1

    def _ingest_file(
        self,
        path: Path,
        known: dict[str, str],
        folders: Sequence[Path] = (),
        placement: Placement | None = None,
    ) -> FileReport:
        from shared.loaders import link_problem, load_file

        shown = str(path)
        problem = link_problem(path, folders)
        if problem is not None:
            return FileReport(path=shown, status="skipped", reason=problem)
        try:
            # BEIR-style JSON Lines keep their own ids as sources; other files are identified by path
            docs = load_file(path, max_bytes=self.max_file_bytes, source=source_for(path), limits=self.limits)
        except LoaderError as exc:
            status = (
                "skipped" if exc.reason.startswith(("unsupported file type", "file too large")) else "error"
            )
            return FileReport(path=shown, status=status, reason=exc.reason)  # type: ignore[arg-type]
        except OSError as exc:
            return FileReport(path=shown, status="error", reason=f"cannot read file: {exc.strerror or exc}")
        warnings = [w for d in docs for w in d.warnings]
        try:
            changed, added = self.index_documents(
                docs, known, placement=placement, relative_path=path_in_folder(path, folders)
            )
        except LoaderError as exc:
            return FileReport(path=shown, status="error", reason=exc.reason, warnings=warnings)
        if changed == 0:
            return FileReport(path=shown, status="unchanged", documents=len(docs), warnings=warnings)
        return FileReport(path=shown, status="indexed", documents=changed, chunks=added, warnings=warnings)

    # ------------------------------------------------------------------ documents

    def index_documents(
        self,
        docs: Iterable[Document],
        known: dict[str, str] | None = None,
        *,
        placement: Placement | None = None,
        relative_path: str | None = None,
    ) -> tuple[int, int]:
        """Index documents of one file into ``placement``; returns ``(documents changed, chunks
        embedded)``. ``known`` maps sources to content hashes already in the store (looked up when not
        given) and is updated. ``relative_path`` is the file's path in its folder or collection (for the
        URL template). A document indexed in another collection moves to this one."""
        known = self.store.source_hashes() if known is None else known
        placement = placement or Placement()
        pending = _Pending()
        changed = 0
        embedded = 0
        for doc in docs:
            # the version indexed is the content, the chunking settings, the collection and the links:
            # changing any of them re-indexes
            page = placement.page_of(doc, relative_path)
            version = placement.version(doc, self.chunker.signature, page)
            if known.get(doc.source) == version:
                continue
            doc = doc.model_copy(update={"content_hash": version, "url": page})
            chunks = self.chunker.chunk(doc, collection=placement.collection)
            if not chunks:
                continue
            changed += 1
            if doc.source in known:
                old = set(self.store.chunk_ids_for_source(doc.source))
                keep = [c.chunk_id for c in chunks if c.chunk_id in old]
                reused = self.store.get_embeddings(keep)
                stale = old - {c.chunk_id for c in chunks}
                if stale:
                    self.store.delete_ids(sorted(stale))
                pending.reused.update(reused)
            known[doc.source] = version
            pending.chunks.extend(chunks)
            embedded += sum(1 for c in chunks if c.chunk_id not in pending.reused)
            if len(pending.chunks) >= self.embed_batch:
                self._flush(pending)
        self._flush(pending)
        return changed, embedded

    def _flush(self, pending: _Pending) -> None:
        if not pending.chunks:
            return
        fresh = [c for c in pending.chunks if c.chunk_id not in pending.reused]
        vectors = dict(
            zip(
                [c.chunk_id for c in fresh],
                self.embedder.embed_documents([embedding_text(c) for c in fresh]) if fresh else [],
                strict=True,
            )
        )
        vectors.update(pending.reused)
        matrix = np.stack([vectors[c.chunk_id] for c in pending.chunks]).astype(np.float32)
        self.store.upsert(pending.chunks, matrix)
        if fresh and self.on_embedded is not None:
            self.on_embedded(fresh)
        pending.chunks.clear()
        pending.reused.clear()

    def replace(
        self,
        docs: Sequence[Document],
        *,
        owned: Iterable[str],
        known: dict[str, str] | None = None,
        placement: Placement | None = None,
        relative_path: str | None = None,
    ) -> tuple[int, int, int]:
        """Make the index hold exactly ``docs`` for one file or object: its indexed sources (``owned``)
        that are not among ``docs`` are deleted, changed documents are re-indexed (into ``placement``,
        see :meth:`index_documents`), and writes are flushed.
        Returns ``(documents changed, chunks embedded, documents deleted)``."""
        known = self.store.source_hashes() if known is None else known
        stale = sorted(set(owned) - {d.source for d in docs})
        deleted, _ = self.delete_sources(stale, known)
        changed, embedded = self.index_documents(
            docs, known, placement=placement, relative_path=relative_path
        )
        self.store.flush()
        return changed, embedded, deleted

    # ------------------------------------------------------------------ removal

    def delete_sources(self, sources: Iterable[str], known: dict[str, str] | None = None) -> tuple[int, int]:
        """Delete every chunk of these sources; returns ``(documents, chunks)`` removed. ``known``
        (sources -> hashes) is kept in step. The caller flushes, once, when its batch is done."""
        documents = chunks = 0
        for source in sources:
            removed = self.store.delete_source(source)
            if known is not None:
                known.pop(source, None)
            if removed:
                documents += 1
                chunks += removed
        return documents, chunks

    def remove_paths(self, paths: Sequence[Path]) -> RemoveSummary:
        """Drop the chunks of the given documents; a folder removes every document under it."""
        summary = RemoveSummary()
        known = self.store.source_hashes()
        for path in paths:
            target = source_for(path)
            matches = [s for s in known if s == target or s.startswith(target.rstrip("/") + "/")]
            if not matches and str(path) in known:  # a JSON Lines record id
                matches = [str(path)]
            if not matches:
                summary.not_found.append(str(path))
                continue
            summary.chunks_removed += self.delete_sources(matches, known)[1]
            summary.sources_removed.extend(matches)
        self.store.flush()
        return summary
