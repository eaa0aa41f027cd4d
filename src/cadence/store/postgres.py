"""The shared store: PostgreSQL through asyncpg, for several server processes sharing users.

Migrations run under an advisory lock, so processes starting together apply each once.
Full-text search uses a generated ``tsvector`` column with a GIN index.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cadence.store.base import MAX_FACTS_PER_USER, MAX_RECENT_MESSAGES, Fact, MemoryState, Store, StoreError, search_terms
from cadence.store.migrations import POSTGRESQL

_LOCK = 0x43414445  # advisory lock key for migrations ('CADE')
_SELECT = "SELECT id, text, slot, created_at, updated_at FROM facts"


class PostgresStore(Store):
    """Facts and memory state in PostgreSQL (``postgresql://user@host/db``)."""

    def __init__(self, url: str):
        self.url = url
        self._pool: Any = None

    async def open(self) -> None:
        try:
            import asyncpg
        except ImportError as exc:
            raise StoreError("memory.store is a PostgreSQL URL but asyncpg is not installed:"
                             " pip install 'cadence[postgres]'") from exc
        self.errors = (StoreError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to the memory store {_redacted(self.url)}: {exc}") from exc
        async with self._pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                             " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
            done = {r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")}
            for version, statements in enumerate(POSTGRESQL, start=1):
                if version not in done:
                    for statement in statements:
                        await db.execute(statement)
                    await db.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time())

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise StoreError("the memory store is not open")
        return self._pool

    async def schema_version(self) -> int:
        return await self.pool.fetchval("SELECT MAX(version) FROM schema_migrations")

    async def add_fact(self, user: str, text: str, slot: str | None = None) -> Fact:
        now = time.time()
        async with self.pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", user)  # one writer per user
            row = None
            if slot is not None:
                row = await db.fetchrow("SELECT id FROM facts WHERE user_id=$1 AND slot=$2", user, slot)
            if row is None:
                row = await db.fetchrow("SELECT id FROM facts WHERE user_id=$1 AND text=$2", user, text)
            if row is not None:
                await db.execute("DELETE FROM facts WHERE user_id=$1 AND text=$2 AND id<>$3", user, text, row["id"])
                await db.execute("UPDATE facts SET text=$1, slot=COALESCE($2, slot), updated_at=$3 WHERE id=$4",
                                 text, slot, now, row["id"])
                fact_id = row["id"]
            else:
                fact_id = await db.fetchval("INSERT INTO facts (user_id, slot, text, created_at, updated_at)"
                                            " VALUES ($1, $2, $3, $4, $4) RETURNING id", user, slot, text, now)
            await db.execute("DELETE FROM facts WHERE id IN (SELECT id FROM facts WHERE user_id=$1"
                             " ORDER BY updated_at DESC, id DESC OFFSET $2)", user, MAX_FACTS_PER_USER)
            return _fact(await db.fetchrow(_SELECT + " WHERE id=$1", fact_id))

    async def facts(self, user: str) -> list[Fact]:
        return [_fact(r) for r in await self.pool.fetch(_SELECT + " WHERE user_id=$1 ORDER BY id", user)]

    async def search_facts(self, user: str, query: str, limit: int = 5) -> list[Fact]:
        terms = search_terms(query)
        if not terms:
            return []
        rows = await self.pool.fetch(
            _SELECT + ", to_tsquery('english', $2) q WHERE user_id=$1 AND tsv @@ q"
            " ORDER BY ts_rank(tsv, q) DESC, id LIMIT $3", user, " | ".join(terms), limit)
        return [_fact(r) for r in rows]

    async def delete_fact(self, user: str, fact_id: int) -> bool:
        status = await self.pool.execute("DELETE FROM facts WHERE user_id=$1 AND id=$2", user, fact_id)
        return status != "DELETE 0"

    async def load_state(self, user: str) -> MemoryState | None:
        row = await self.pool.fetchrow("SELECT summary, recent, updated_at FROM memory_state WHERE user_id=$1", user)
        if row is None:
            return None
        return MemoryState(summary=row["summary"], recent=json.loads(row["recent"]), updated_at=row["updated_at"])

    async def save_state(self, user: str, state: MemoryState) -> None:
        await self.pool.execute(
            "INSERT INTO memory_state (user_id, summary, recent, updated_at) VALUES ($1, $2, $3::jsonb, $4)"
            " ON CONFLICT (user_id) DO UPDATE SET summary=excluded.summary, recent=excluded.recent,"
            " updated_at=excluded.updated_at",
            user, state.summary, json.dumps(state.recent[-MAX_RECENT_MESSAGES:], ensure_ascii=False), time.time())

    async def forget(self, user: str) -> bool:
        async with self.pool.acquire() as db, db.transaction():
            facts = await db.execute("DELETE FROM facts WHERE user_id=$1", user)
            state = await db.execute("DELETE FROM memory_state WHERE user_id=$1", user)
        return facts != "DELETE 0" or state != "DELETE 0"


def _fact(row: Any) -> Fact:
    return Fact(id=row["id"], text=row["text"], slot=row["slot"], created_at=row["created_at"],
                updated_at=row["updated_at"])


def _redacted(url: str) -> str:
    """The URL without its password (never logged)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = credentials.split(":")[0] + ":***@" + host
    return scheme + sep + rest
