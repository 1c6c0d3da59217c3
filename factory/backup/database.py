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

_CREATE = re.compile(rb"CREATE TABLE `((?:[^`]|``)+)`")
_INSERT = re.compile(rb"INSERT INTO `((?:[^`]|``)+)` VALUES\s*")
# A quoted value as the dump writes it: backslash escapes, newlines written as \n (one row never
# spans lines unescaped).
_STRING = re.compile(rb"'(?:[^'\\]|\\.)*'", re.S)


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
    """Counts the rows of each table in a ``mariadb-dump`` stream, fed line by line.

    Handles both layouts: one extended INSERT per line (mysqldump) and one row per line after
    ``INSERT INTO `t` VALUES`` (mariadb-dump 10.11+). Quoted values are removed first, so a
    parenthesis inside a string does not count; what is left has one "(" per row.
    """

    def __init__(self):
        self.counts: dict[str, int] = {}
        self._table = None

    def feed(self, line: bytes) -> None:
        if self._table is None:
            if created := _CREATE.match(line):
                self.counts.setdefault(created[1].replace(b"``", b"`").decode(), 0)
                return
            insert = _INSERT.match(line)
            if insert is None:
                return
            self._table = insert[1].replace(b"``", b"`").decode()
            self.counts.setdefault(self._table, 0)
            line = line[insert.end() :]
        values = _STRING.sub(b"", line)
        self.counts[self._table] += values.count(b"(")
        if values.rstrip().endswith(b";"):
            self._table = None


def _fail(what: str, errors) -> BackupError:
    errors.seek(0)
    return BackupError(f"{what} failed: {errors.read()[-2000:].decode(errors='replace').strip()}")


def mysql_dump(settings_dict: dict, target: Path) -> dict[str, int]:
    """Dump the database to ``target`` (gzip) from one snapshot; return the rows per table in it."""
    command, env = _command(DUMP_PROGRAMS, settings_dict, DUMP_OPTIONS)
    counter = RowCounter()
    with tempfile.TemporaryFile() as errors, gzip.open(target, "wb", compresslevel=6) as out:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env)  # noqa: S603
        for line in process.stdout:
            counter.feed(line)
            out.write(line)
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
