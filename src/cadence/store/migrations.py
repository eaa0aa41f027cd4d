"""The store's schema, one list of migrations per dialect; a migration is applied once, in
order, and its number recorded in ``schema_migrations``. Append, never edit."""

from __future__ import annotations

SQLITE: list[list[str]] = [
    [  # 1: facts with full-text search, per-user memory state
        """CREATE TABLE facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            slot TEXT,
            text TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE UNIQUE INDEX facts_user_slot ON facts(user_id, slot) WHERE slot IS NOT NULL",
        "CREATE UNIQUE INDEX facts_user_text ON facts(user_id, text)",
        "CREATE INDEX facts_user_updated ON facts(user_id, updated_at)",
        "CREATE VIRTUAL TABLE facts_fts USING fts5(text, content='facts', content_rowid='id',"
        " tokenize='porter unicode61')",
        """CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN
            INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text); END""",
        """CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
        """CREATE TRIGGER facts_au AFTER UPDATE OF text ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text); END""",
        """CREATE TABLE memory_state (
            user_id TEXT PRIMARY KEY,
            summary TEXT NOT NULL DEFAULT '',
            recent TEXT NOT NULL DEFAULT '[]',
            updated_at REAL NOT NULL)""",
    ],
]

POSTGRESQL: list[list[str]] = [
    [
        """CREATE TABLE facts (
            id BIGSERIAL PRIMARY KEY,
            user_id TEXT NOT NULL,
            slot TEXT,
            text TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)""",
        "CREATE UNIQUE INDEX facts_user_slot ON facts(user_id, slot) WHERE slot IS NOT NULL",
        "CREATE UNIQUE INDEX facts_user_text ON facts(user_id, text)",
        "CREATE INDEX facts_user_updated ON facts(user_id, updated_at)",
        "CREATE INDEX facts_tsv ON facts USING GIN (tsv)",
        """CREATE TABLE memory_state (
            user_id TEXT PRIMARY KEY,
            summary TEXT NOT NULL DEFAULT '',
            recent JSONB NOT NULL DEFAULT '[]',
            updated_at DOUBLE PRECISION NOT NULL)""",
    ],
]
