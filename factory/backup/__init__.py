"""Backup and restore of a whole installation: ``manage.py backup --out DIR`` and
``manage.py restore --from DIR`` (README "Backup and restore").

A backup directory holds:

- ``database.sql.gz`` (MariaDB/MySQL, ``mariadb-dump`` from one snapshot) or ``database.sqlite3``;
- ``media.tar.gz``: every file under ``MEDIA_ROOT`` (firmware images), taken after the database so
  every file a backed-up row names is in it (files are written before their rows commit);
- ``broker/dynamic-security.json``: the MQTT broker's clients (salted password hashes), roles and
  ACLs, when this machine holds the broker's data directory;
- ``manifest.json``: when, which code (version, commit, applied migrations), the rows of every
  table in the dump and the SHA-256 of every file.

Restore refuses a target that is not empty unless forced, checks every checksum before it loads
anything, loads, then checks the restored database's row counts against the manifest and every
firmware image's file against the SHA-256 its row records.
"""

import json
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from factory.backup import database, files
from factory.backup.database import BackupError

__all__ = ["BackupError", "backup_create", "backup_restore"]

FORMAT = 1
MANIFEST = "manifest.json"
DUMP, SQLITE_COPY, MEDIA = "database.sql.gz", "database.sqlite3", "media.tar.gz"
BROKER_COPY = f"broker/{files.DYNSEC_FILE}"
# Never in a backup: keep these with the deployment's secrets (README "Backup and restore").
SECRETS_NOT_INCLUDED = [
    "SECRET_KEY",
    "DEVICE_TOKEN_HASH_KEY (device tokens are HMACs under it; default SECRET_KEY)",
    "JWT_SIGNING_KEY (default SECRET_KEY)",
    "FIRMWARE_SIGNING_KEY",
    "MQTT_PLATFORM_PASSWORD / MQTT_BRIDGE_PASSWORD (deploy/secrets/ or var/mosquitto/*_password)",
    "database, e-mail and TLS credentials",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def app_version() -> dict:
    """The code that made the backup: the project's version, its git commit when known, Django's."""
    base = Path(settings.BASE_DIR)
    version = tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"]
    try:
        commit = subprocess.run(  # noqa: S603
            [shutil.which("git") or "git", "-C", str(base), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"version": version, "commit": commit or None, "django": django.get_version()}


def _migrations(rows) -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


def _file_entry(path: Path) -> dict:
    return {"file": path.name, "sha256": files.file_sha256(path), "bytes": path.stat().st_size}


def _backup_database(work: Path, say) -> dict:
    vendor, db = connection.vendor, connection.settings_dict
    if vendor == "mysql":
        # Read before the dump: migrations do not run while a backup does (deploy runs them first).
        with connection.cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations")
            migrations = _migrations(cursor.fetchall())
        connection.close()  # the dump takes minutes on a big plant: no idle connection meanwhile
        tables = database.mysql_dump(db, work / DUMP)
        path = work / DUMP
    elif vendor == "sqlite":
        path = work / SQLITE_COPY
        database.sqlite_copy(Path(db["NAME"]), path)
        tables = database.sqlite_counts(path)
        copy = database.sqlite3.connect(path)
        try:
            migrations = _migrations(copy.execute("SELECT app, name FROM django_migrations"))
        finally:
            copy.close()
    else:
        raise BackupError(f"backing up a {vendor} database is not supported: use MariaDB/MySQL or SQLite")
    say(f"database ({vendor}): {sum(tables.values())} rows in {len(tables)} tables -> {path.name}")
    return {"vendor": vendor, **_file_entry(path), "tables": tables, "migrations": migrations}


def backup_create(*, out: Path, broker_dir: Path | None, say=print) -> dict:
    """Write a backup of the database, media and broker state to the new directory ``out``.

    The work happens in ``<out>.partial``, renamed to ``out`` only when complete: a directory
    named ``out`` is always a whole backup. Returns the manifest. Raises ``BackupError``.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty directory: give a new one (e.g. one per date)")
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)  # what a failed run left
    work.mkdir(mode=0o700, parents=True)  # the dump holds password hashes and token HMACs
    manifest = {"format": FORMAT, "started_at": _now(), "app": app_version()}
    manifest["database"] = _backup_database(work, say)
    media_root = Path(settings.MEDIA_ROOT)
    checksums = files.media_archive(media_root, work / MEDIA)
    manifest["media"] = {**_file_entry(work / MEDIA), "root": str(media_root), "files": checksums}
    say(f"media: {len(checksums)} file(s) from {media_root} -> {MEDIA}")
    data = files.broker_read(broker_dir) if broker_dir else None
    if data is None:
        manifest["broker"] = None
        why = f"no {files.DYNSEC_FILE} in {broker_dir} (no broker provisioned here)" if broker_dir else "--no-broker"
        say(f"broker: skipped: {why}")
    else:
        files.write_private(work / BROKER_COPY, data)
        manifest["broker"] = {"files": {files.DYNSEC_FILE: files.file_sha256(work / BROKER_COPY)}}
        clients = len(json.loads(data).get("clients", []))
        say(f"broker: {files.DYNSEC_FILE} ({clients} clients, salted password hashes) -> {BROKER_COPY}")
    manifest["secrets_not_included"] = SECRETS_NOT_INCLUDED
    manifest["finished_at"] = _now()
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if out.exists():
        out.rmdir()
    work.rename(out)
    say(f"backup complete: {out}")
    return manifest


def read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST} cannot be read ({exc}): is {source} a backup directory?") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is a backup of format {manifest.get('format')!r}; this code reads {FORMAT}")
    return manifest


def _check_files(source: Path, manifest: dict) -> None:
    """Every file the manifest lists is there with its checksum (before anything is changed)."""
    parts = [(manifest["database"]["file"], manifest["database"]["sha256"])]
    parts.append((manifest["media"]["file"], manifest["media"]["sha256"]))
    parts += [(f"broker/{name}", sha) for name, sha in ((manifest.get("broker") or {}).get("files") or {}).items()]
    for name, sha256 in parts:
        path = source / name
        if not path.is_file():
            raise BackupError(f"{path} is missing: the backup is incomplete")
        if files.file_sha256(path) != sha256:
            raise BackupError(f"{path}: SHA-256 differs from the manifest's: the backup is damaged or was altered")


def table_counts() -> dict[str, int]:
    """Exact rows of every table of the configured database (``COUNT(*)``, not the estimates)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 (names from the database itself)
            counts[table] = cursor.fetchone()[0]
    return counts


def _empty_targets(manifest: dict, broker_dir: Path | None) -> list[str]:
    """What restore would overwrite: the names of the non-empty targets."""
    try:
        tables = connection.introspection.table_names()
    except DatabaseError as exc:
        raise BackupError(
            f"cannot open the target database ({exc}); create it empty first, e.g. CREATE DATABASE factory "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ) from None
    busy = [f"the database {connection.settings_dict['NAME']} ({len(tables)} tables)"] if tables else []
    media_root = Path(settings.MEDIA_ROOT)
    if media_root.is_dir() and any(path.is_file() for path in media_root.rglob("*")):
        busy.append(f"the media directory {media_root}")
    if manifest.get("broker") and broker_dir and (broker_dir / files.DYNSEC_FILE).exists():
        busy.append(f"the broker's {broker_dir / files.DYNSEC_FILE}")
    return busy


def _load_database(source: Path, manifest: dict, say) -> None:
    vendor = manifest["database"]["vendor"]
    if vendor != connection.vendor:
        raise BackupError(
            f"this is a {vendor} backup; the target database is {connection.vendor}: restore into {vendor}"
        )
    tables = connection.introspection.table_names()
    if vendor == "mysql":
        if tables:  # --force: replace, do not merge (the dump drops only the tables it has)
            with connection.cursor() as cursor:
                cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
                for table in tables:
                    cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
                cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
            say(f"database: dropped {len(tables)} existing tables (--force)")
        connection.close()
        database.mysql_load(connection.settings_dict, source / DUMP)
    else:
        connection.close()
        database.sqlite_copy(source / SQLITE_COPY, Path(connection.settings_dict["NAME"]))
    say(f"database: loaded {manifest['database']['file']} into {connection.settings_dict['NAME']}")


def _count_problems(expected: dict[str, int]) -> list[str]:
    restored = table_counts()
    problems = [
        f"table {table}: {restored.get(table, 'missing')} rows restored, {count} in the backup"
        for table, count in sorted(expected.items())
        if restored.get(table) != count
    ]
    extra = sorted(set(restored) - set(expected))
    return problems + [f"table {table}: not in the backup" for table in extra if not table.startswith("sqlite_")]


def firmware_problems() -> list[str]:
    """Firmware images whose file is missing or whose bytes differ from the SHA-256 on their row."""
    if not apps.is_installed("firmware"):
        return []
    from firmware.models import FirmwareImage

    problems = []
    for image in FirmwareImage.objects.only("pk", "version", "file", "sha256").order_by("pk"):
        try:
            with image.file.open("rb") as fh:
                digest = files.hashlib.sha256()
                for chunk in fh.chunks():
                    digest.update(chunk)
        except OSError:
            problems.append(f"firmware image {image.pk} ({image.version}): file {image.file.name} is missing")
            continue
        if digest.hexdigest() != image.sha256:
            problems.append(f"firmware image {image.pk} ({image.version}): file differs from its SHA-256")
    return problems


def _migration_notes() -> list[str]:
    executor = MigrationExecutor(connection)
    unknown = sorted(set(executor.loader.applied_migrations) - set(executor.loader.graph.nodes))
    notes = []
    if unknown:
        notes.append(
            f"the backup has {len(unknown)} migration(s) this code does not ({', '.join(map('.'.join, unknown[:5]))}):"
            " it was made by a newer version; run that version"
        )
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        notes.append(f"{len(pending)} migration(s) of this code are not applied yet: run manage.py migrate")
    return notes


def backup_restore(*, source: Path, force: bool, broker_dir: Path | None, say=print) -> list[str]:
    """Restore the backup in ``source`` into the configured database, ``MEDIA_ROOT`` and ``broker_dir``.

    Refuses non-empty targets unless ``force`` (then the database's tables are replaced and files of
    the same name overwritten). Checks the backup's checksums first, the result after. Returns notes
    for the operator; raises ``BackupError`` when a check fails (everything that could be restored is).
    """
    manifest = read_manifest(source)
    _check_files(source, manifest)
    say(f"backup of {manifest['finished_at']} (version {manifest['app']['version']}): checksums verified")
    busy = _empty_targets(manifest, broker_dir)
    if busy and not force:
        raise BackupError(f"not empty: {'; '.join(busy)}. Restore into empty ones, or add --force to replace them")
    _load_database(source, manifest, say)
    problems = _count_problems(manifest["database"]["tables"])
    rows = sum(manifest["database"]["tables"].values())
    say(
        f"database: {rows} rows in {len(manifest['database']['tables'])} tables"
        + ("" if problems else ", as in the backup")
    )
    media_root = Path(settings.MEDIA_ROOT)
    media_problems = files.media_extract(source / MEDIA, media_root, manifest["media"]["files"])
    media_problems += firmware_problems()
    say(
        f"media: {len(manifest['media']['files'])} file(s) -> {media_root}"
        + ("" if media_problems else ", checksums match")
    )
    problems += media_problems
    if manifest.get("broker") and broker_dir:
        files.write_private(broker_dir / files.DYNSEC_FILE, (source / BROKER_COPY).read_bytes())
        say(
            f"broker: {files.DYNSEC_FILE} -> {broker_dir}; restart Mosquitto so it loads it, "
            "then run manage.py mqtt_reconcile"
        )
    elif manifest.get("broker"):
        say(f"broker: not restored (no broker directory); copy {source / BROKER_COPY} into the broker's data directory")
    notes = _migration_notes()
    for note in notes:
        say(f"note: {note}")
    if problems:
        raise BackupError("restore finished, but verification failed:\n  " + "\n  ".join(problems))
    say("restore complete and verified")
    return notes
