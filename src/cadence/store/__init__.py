"""One persistence layer for memory (and, next, usage and voices): SQLite by default,
PostgreSQL for several processes sharing users. Nothing outside this package opens a database."""

from __future__ import annotations

from pathlib import Path

from cadence.store.base import Fact, MemoryState, Store, StoreError

__all__ = ["Fact", "MemoryState", "Store", "StoreError", "default_store_url", "make_store"]


def default_store_url() -> str:
    """``sqlite:///$CADENCE_DATA_DIR/memory.db`` (``~/.cache/cadence`` when unset)."""
    from cadence.model_parts import data_dir

    return f"sqlite:///{data_dir() / 'memory.db'}"


def make_store(url: str, base: Path | None = None) -> Store:
    """The store for ``url``: ``sqlite:///path`` (or a plain file path; relative to ``base``)
    or ``postgresql://…``. Not opened yet."""
    if url.startswith(("postgresql://", "postgres://")):
        from cadence.store.postgres import PostgresStore

        return PostgresStore(url)
    from cadence.store.sqlite import SQLiteStore

    path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return SQLiteStore(path)
