"""The database part of a backup: a consistent copy taken while ingest runs, its row counts, and
loading it back.

- MariaDB/MySQL: ``mariadb-dump --single-transaction`` reads every table from one InnoDB snapshot
  (a consistent read: no table locks, ingest keeps committing). The row counts come from the dump
  itself as it streams by, so they are the snapshot's, not a second look at a moving database.
- SQLite: the online backup API copies the whole file in one step under a read transaction (WAL:
  writers are not blocked); the counts are read from the copy.
"""

import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from django.db.backends.mysql.client import DatabaseClient

# --single-transaction: one consistent snapshot, no LOCK TABLES on InnoDB (and no DDL may run meanwhile).
# --hex-blob: binary columns survive any client character set. --no-tablespaces: no PROCESS privilege needed.
DUMP_OPTIONS = ["--single-transaction", "--quick", "--routines", "--triggers", "--hex-blob", "--no-tablespaces"]
DUMP_PROGRAMS, CLIENT_PROGRAMS = ("mariadb-dump", "mysqldump"), ("mariadb", "mysql")

_HEADER = re.compile(rb"^(CREATE TABLE|INSERT INTO) `((?:[^`]|``)+)`( VALUES\n)?", re.M)
# A quoted value as the dump writes it: backslash escapes, and never a raw newline (written \n).
_STRING = re.compile(rb"'(?:[^'\\\n]|\\.)*'")


class BackupError(Exception):
    """A backup or restore step failed; the message says what to do."""


def _program(names: tuple[str, ...]) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    raise BackupError(f"{names[0]} (or {names[1]}) is needed: apt-get install mariadb-client")


def _command(programs: tuple[str, ...], settings_dict: dict, options: list[str]) -> tuple[list[str], dict]:
    """The client command for the Django database ``settings_dict`` (Django's own translation of the
    settings into client arguments; the password goes in the environment, never on the command line)."""
    args, env = DatabaseClient.settings_to_cmd_args_env(settings_dict, [])
    database = args.pop()  # without extra parameters the database name comes last
    return [_program(programs), *args[1:], *options, database], {**os.environ, **(env or {})}


class RowCounter:
    """Counts the rows of each table in a ``mariadb-dump`` stream, fed in blocks of whole lines.

    A raw newline never occurs inside a quoted value (the dump writes ``\\n``), so lines are safe
    boundaries and an INSERT statement ends at the first ``;`` that ends a line. mariadb-dump 10.11+
    writes ``INSERT INTO `t` VALUES`` and then one row per line: a row is a line that starts with
    "(" (counted at C speed). mysqldump writes each extended INSERT on one line: its quoted values
    are removed first, so a parenthesis inside a string does not count, and one "(" is left per row.
    """

    def __init__(self):
        self.counts: dict[str, int] = {}
        self._table, self._per_line = None, False

    def _count(self, text: bytes, start: int, stop: int) -> int:
        if self._per_line:  # the first row starts the block's text, the others follow a newline
            return text.count(b"\n(", start, stop) + (text[start : start + 1] == b"(")
        return _STRING.sub(b"", text[start:stop]).count(b"(")

    def feed(self, block: bytes) -> None:
        position = 0
        while True:
            if self._table is not None:
                end = block.find(b";\n", position)
                stop = len(block) if end < 0 else end
                self.counts[self._table] += self._count(block, position, stop)
                if end < 0:
                    return
                self._table, position = None, end + 2
            header = _HEADER.search(block, position)
            if header is None:
                return
            name = header[2].replace(b"``", b"`").decode()
            self.counts.setdefault(name, 0)
            position = header.end()
            if header[1] == b"INSERT INTO":
                self._table, self._per_line = name, header[3] is not None


def _fail(what: str, errors) -> BackupError:
    errors.seek(0)
    return BackupError(f"{what} failed: {errors.read()[-2000:].decode(errors='replace').strip()}")


def mysql_dump(settings_dict: dict, target: Path) -> dict[str, int]:
    """Dump the database to ``target`` (gzip) from one snapshot; return the rows per table in it."""
    command, env = _command(DUMP_PROGRAMS, settings_dict, DUMP_OPTIONS)
    counter = RowCounter()
    # gzip level 1: 4x faster than 6 for 15 % more bytes; the dump's speed is what holds a snapshot open.
    with tempfile.TemporaryFile() as errors, gzip.open(target, "wb", compresslevel=1) as out:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env)  # noqa: S603
        carry = b""
        while block := process.stdout.read(1 << 20):
            out.write(block)
            block = carry + block
            cut = block.rfind(b"\n") + 1  # whole lines only: a quoted value never spans two
            counter.feed(block[:cut])
            carry = block[cut:]
        counter.feed(carry)
        if process.wait() != 0:
            raise _fail(Path(command[0]).name, errors)
    return counter.counts


def mysql_load(settings_dict: dict, source: Path) -> None:
    """Feed the gzipped dump ``source`` to the database of ``settings_dict`` through the client."""
    command, env = _command(CLIENT_PROGRAMS, settings_dict, [])
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors, env=env
        )
        try:
            with gzip.open(source, "rb") as dump:
                shutil.copyfileobj(dump, process.stdin, 1 << 20)
            process.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped early: its exit status and message say why
        if process.wait() != 0:
            raise _fail(f"Loading the dump with {Path(command[0]).name}", errors)


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [name for (name,) in rows]


def sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in sqlite_tables(conn)}  # noqa: S608
    finally:
        conn.close()


def sqlite_copy(source: Path, target: Path) -> None:
    """Copy the database ``source`` into ``target`` with the online backup API, in one step: one read
    transaction, so one consistent state, while other connections keep writing (WAL)."""
    src, dst = sqlite3.connect(source, timeout=20), sqlite3.connect(target, timeout=20)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
