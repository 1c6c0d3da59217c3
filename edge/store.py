"""Store-and-forward: an SQLite disk queue of telemetry messages that survives outages and restarts.

Messages are kept in arrival order (an AUTOINCREMENT id never reuses a number, so order holds
across restarts and deletions) with their readings' original timestamps inside. The queue is
bounded by rows and by age: when full, the oldest messages are dropped first and counted, so a
long outage loses the oldest data rather than the newest, and the count tells how much. Messages
the platform refused as invalid (HTTP 400) go to a dead-letter table in the same file, where an
engineer can read them; they are never retried.

All calls are short and run on the gateway's event loop thread (one connection, WAL journal).
"""

import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    ts REAL NOT NULL,          -- the message's reading time (unix seconds), for the age bound
    body TEXT NOT NULL         -- one contract message as JSON
);
CREATE INDEX IF NOT EXISTS outbox_device ON outbox (device, id);
CREATE INDEX IF NOT EXISTS outbox_ts ON outbox (ts);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,    -- the outbox id it had
    device TEXT NOT NULL,
    body TEXT NOT NULL,
    status INTEGER NOT NULL,   -- the HTTP status that refused it
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Store:
    """The queue file at ``path``, holding at most ``max_rows`` messages not older than ``max_age`` seconds."""

    def __init__(self, path: Path, *, max_rows: int, max_age: float):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.max_rows, self.max_age = path, max_rows, max_age
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a process crash loses nothing committed
        self.db.executescript(SCHEMA)
        self._depth = self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def enqueue(self, messages: list[tuple[str, dict]]) -> int:
        """Append ``(device uid, message)`` pairs in order; returns how many old messages were dropped
        to make room (oldest first, counted in ``dropped_full``)."""
        if not messages:
            return 0
        rows = [
            (device, _unix(message.get("ts")), json.dumps(message, separators=(",", ":")))
            for device, message in messages
        ]
        with self._transaction():
            self.db.executemany("INSERT INTO outbox (device, ts, body) VALUES (?, ?, ?)", rows)
            self._depth += len(rows)
            excess = self._depth - self.max_rows
            if excess > 0:
                self.db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                self._count("dropped_full", excess)
                self._depth -= excess
        return max(excess, 0)

    def expire(self, now: float | None = None) -> int:
        """Drop messages whose readings are older than ``max_age`` (the platform would refuse them); counted."""
        cutoff = (now or time.time()) - self.max_age
        with self._transaction():
            expired = self.db.execute("DELETE FROM outbox WHERE ts < ?", (cutoff,)).rowcount
            if expired:
                self._count("dropped_expired", expired)
                self._depth -= expired
        return expired

    def peek(self, limit: int, skip: set[str] | frozenset = frozenset()) -> tuple[str, list[tuple[int, str]]] | None:
        """The next batch to send: the device of the oldest message (not in ``skip``) and up to
        ``limit`` of its messages in order, as ``(id, JSON)``. None when nothing is sendable."""
        exclude = ",".join("?" * len(skip))
        head = self.db.execute(
            f"SELECT device FROM outbox {f'WHERE device NOT IN ({exclude})' if skip else ''} ORDER BY id LIMIT 1",  # noqa: S608 (placeholders only)
            tuple(skip),
        ).fetchone()
        if head is None:
            return None
        rows = self.db.execute(
            "SELECT id, body FROM outbox WHERE device = ? ORDER BY id LIMIT ?", (head[0], limit)
        ).fetchall()
        return head[0], rows

    def delete(self, ids: list[int]) -> None:
        """Forget messages the platform accepted."""
        with self._transaction():
            deleted = self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids]).rowcount
            self._depth -= deleted

    def dead_letter(self, rejected: list[tuple[int, str]], status: int) -> None:
        """Move ``(id, reason)`` messages the platform refused for good out of the queue."""
        with self._transaction():
            for message_id, reason in rejected:
                self.db.execute(
                    "INSERT OR IGNORE INTO dead_letter (id, device, body, status, reason, failed_at) "
                    "SELECT id, device, body, ?, ?, ? FROM outbox WHERE id = ?",
                    (status, reason, time.time(), message_id),
                )
                self._depth -= self.db.execute("DELETE FROM outbox WHERE id = ?", (message_id,)).rowcount

    def dead_letters(self) -> list[dict]:
        rows = self.db.execute("SELECT id, device, body, status, reason FROM dead_letter ORDER BY id").fetchall()
        return [{"id": i, "device": d, "message": json.loads(b), "status": s, "reason": r} for i, d, b, s, r in rows]

    @property
    def depth(self) -> int:
        return self._depth

    def counters(self) -> dict[str, int]:
        """Cumulative since the queue file was created: ``dropped_full``, ``dropped_expired``, ``dead_letters``."""
        values = dict(self.db.execute("SELECT name, value FROM counter").fetchall())
        dead = self.db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0]
        return {"dropped_full": values.get("dropped_full", 0), "dropped_expired": values.get("dropped_expired", 0),
                "dead_letters": dead}  # fmt: skip

    def _count(self, name: str, amount: int) -> None:
        self.db.execute(
            "INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, amount, amount),
        )

    def _transaction(self):
        return _Transaction(self)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit mode); after
    a rollback the cached depth is counted again."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self):
        self.store.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.store.db.execute("COMMIT")
        else:
            self.store.db.execute("ROLLBACK")
            self.store._depth = self.store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return False


def _unix(ts: str | None) -> float:
    if not ts:
        return time.time()
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
