"""Interactions beside a local index: one SQLite file (``<home>/interactions.sqlite3``) in WAL mode.

Each record is kept as its JSON next to the columns reports filter on (time, collection, decision), so
the model can grow without migrations. Writers serialise on SQLite's own lock (``busy_timeout``); `serve`'s
worker processes and the CLI may write at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from shared.errors import StoreError
from shared.feedback import Interaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    collection TEXT,
    decision TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS interactions_created ON interactions (created_at);
"""


class SqliteInteractionStore:
    """:class:`shared.feedback.InteractionStore` on SQLite."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=self._timeout)
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the interactions file {self.path}: {exc}") from exc
            self._local.db = db
        return db

    def put(self, interaction: Interaction) -> None:
        try:
            with self._db() as db:
                db.execute(
                    "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?, ?, ?)",
                    (
                        interaction.interaction_id,
                        interaction.created_at,
                        interaction.collection,
                        interaction.decision,
                        interaction.model_dump_json(),
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the interactions file {self.path}: {exc}") from exc

    def get(self, interaction_id: str) -> Interaction | None:
        try:
            row = (
                self._db()
                .execute("SELECT record FROM interactions WHERE interaction_id = ?", (interaction_id,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the interactions file {self.path}: {exc}") from exc
        return Interaction.model_validate_json(row[0]) if row else None

    def scan(
        self, *, since: str | None = None, until: str | None = None, collection: str | None = None
    ) -> Iterator[Interaction]:
        sql, args = "SELECT record FROM interactions WHERE 1=1", []
        for clause, value in (
            ("created_at >= ?", since),
            ("created_at < ?", until),
            ("collection = ?", collection),
        ):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        try:
            rows = self._db().execute(sql + " ORDER BY created_at", args)
            for (record,) in rows:
                yield Interaction.model_validate_json(record)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the interactions file {self.path}: {exc}") from exc

    def prune(self, before: str) -> int:
        try:
            with self._db() as db:
                return db.execute("DELETE FROM interactions WHERE created_at < ?", (before,)).rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prune the interactions file {self.path}: {exc}") from exc

    def count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM interactions").fetchone()[0])
