"""The default store: one SQLite file in WAL mode, used from one worker thread.

A commit in WAL mode reaches the operating system before ``save_state`` returns, so a
killed server loses nothing it reported saved (``synchronous=NORMAL`` risks only the last
commits on a power cut, not on a process crash).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cadence.store.base import MAX_FACTS_PER_USER, MAX_RECENT_MESSAGES, Fact, MemoryState, Store, StoreError, search_terms
from cadence.store.migrations import SQLITE


class SQLiteStore(Store):
    """Facts and memory state in a SQLite file (``sqlite:///path``), full-text search by FTS5/BM25."""

    errors = (StoreError, OSError, sqlite3.Error)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: calls are serialised, the event loop never blocks.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cadence-store")

    async def _run(self, fn, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db or sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the memory store {self.path}: {exc}") from exc
        self._db = db
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
        for version, statements in enumerate(SQLITE, start=1):
            if version in done:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(f"memory store {self.path}: migration {version} failed: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=False)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the memory store is not open")
        return self._db

    async def schema_version(self) -> int:
        return await self._run(lambda: self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])

    async def add_fact(self, user: str, text: str, slot: str | None = None) -> Fact:
        return await self._run(self._add_fact, user, text, slot)

    def _add_fact(self, user: str, text: str, slot: str | None) -> Fact:
        db, now = self.db, time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = None
            if slot is not None:
                row = db.execute("SELECT id FROM facts WHERE user_id=? AND slot=?", (user, slot)).fetchone()
            if row is None:
                row = db.execute("SELECT id FROM facts WHERE user_id=? AND text=?", (user, text)).fetchone()
            if row is not None:
                db.execute("DELETE FROM facts WHERE user_id=? AND text=? AND id<>?", (user, text, row[0]))
                db.execute("UPDATE facts SET text=?, slot=COALESCE(?, slot), updated_at=? WHERE id=?",
                           (text, slot, now, row[0]))
                fact_id = row[0]
            else:
                fact_id = db.execute("INSERT INTO facts (user_id, slot, text, created_at, updated_at)"
                                     " VALUES (?, ?, ?, ?, ?)", (user, slot, text, now, now)).lastrowid
            db.execute("DELETE FROM facts WHERE id IN (SELECT id FROM facts WHERE user_id=?"
                       " ORDER BY updated_at DESC, id DESC LIMIT -1 OFFSET ?)", (user, MAX_FACTS_PER_USER))
            db.execute("COMMIT")
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise
        return self._fact(db.execute(_SELECT + " WHERE id=?", (fact_id,)).fetchone())

    async def facts(self, user: str) -> list[Fact]:
        rows = await self._run(lambda: self.db.execute(_SELECT + " WHERE user_id=? ORDER BY id", (user,)).fetchall())
        return [self._fact(r) for r in rows]

    async def search_facts(self, user: str, query: str, limit: int = 5) -> list[Fact]:
        terms = search_terms(query)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = ("SELECT f.id, f.text, f.slot, f.created_at, f.updated_at FROM facts_fts"
               " JOIN facts f ON f.id = facts_fts.rowid WHERE facts_fts MATCH ? AND f.user_id=?"
               " ORDER BY bm25(facts_fts) LIMIT ?")
        rows = await self._run(lambda: self.db.execute(sql, (match, user, limit)).fetchall())
        return [self._fact(r) for r in rows]

    async def delete_fact(self, user: str, fact_id: int) -> bool:
        cursor = await self._run(lambda: self.db.execute("DELETE FROM facts WHERE user_id=? AND id=?", (user, fact_id)))
        return cursor.rowcount > 0

    async def load_state(self, user: str) -> MemoryState | None:
        row = await self._run(lambda: self.db.execute(
            "SELECT summary, recent, updated_at FROM memory_state WHERE user_id=?", (user,)).fetchone())
        if row is None:
            return None
        return MemoryState(summary=row[0], recent=json.loads(row[1]), updated_at=row[2])

    async def save_state(self, user: str, state: MemoryState) -> None:
        recent = json.dumps(state.recent[-MAX_RECENT_MESSAGES:], ensure_ascii=False)
        await self._run(lambda: self.db.execute(
            "INSERT INTO memory_state (user_id, summary, recent, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET summary=excluded.summary, recent=excluded.recent,"
            " updated_at=excluded.updated_at", (user, state.summary, recent, time.time())))

    async def forget(self, user: str) -> bool:
        def forget() -> bool:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute("DELETE FROM facts WHERE user_id=?", (user,)).rowcount
            gone += db.execute("DELETE FROM memory_state WHERE user_id=?", (user,)).rowcount
            db.execute("COMMIT")
            return gone > 0
        return await self._run(forget)

    @staticmethod
    def _fact(row: tuple) -> Fact:
        return Fact(id=row[0], text=row[1], slot=row[2], created_at=row[3], updated_at=row[4])


_SELECT = "SELECT id, text, slot, created_at, updated_at FROM facts"
