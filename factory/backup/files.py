"""The file parts of a backup: media (firmware images) as a tar with a SHA-256 per file, and the
broker's dynamic-security file (its clients' salted password hashes, roles and ACLs)."""

import hashlib
import json
import os
import tarfile
import time
from pathlib import Path, PurePosixPath

from factory.backup.database import BackupError

# Mosquitto's dynamic-security plugin keeps every client, role and salted password hash here. The
# device passwords exist nowhere else: the registry keeps only an HMAC of each token, so
# ``mqtt_reconcile`` can rebuild roles and ACLs but not the devices' MQTT passwords.
DYNSEC_FILE = "dynamic-security.json"


class _Hashing:
    """A file object that hashes what is read from (or written to) it."""

    def __init__(self, fileobj):
        self.fileobj, self.digest = fileobj, hashlib.sha256()

    def read(self, size=-1):
        data = self.fileobj.read(size)
        self.digest.update(data)
        return data

    def write(self, data):
        self.digest.update(data)
        return self.fileobj.write(data)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def media_archive(root: Path, target: Path) -> dict[str, str]:
    """Every regular file under ``root`` into the tar.gz ``target``; return {relative path: SHA-256}.

    Each file is hashed as it is read into the archive, so the checksum is of the archived bytes.
    """
    checksums = {}
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_symlink() or not path.is_file():
                continue
            name = path.relative_to(root).as_posix()
            info = tar.gettarinfo(path, arcname=name)
            with path.open("rb") as fh:
                reader = _Hashing(fh)
                tar.addfile(info, reader)
            checksums[name] = reader.digest.hexdigest()
    return checksums


def _safe_member(member: tarfile.TarInfo) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if not member.isfile() or name.is_absolute() or ".." in name.parts:
        raise BackupError(f"media archive member {member.name!r} is not a plain relative file: refusing it")
    return name


def media_extract(archive: Path, root: Path, expected: dict[str, str]) -> list[str]:
    """Write the archive's files under ``root``, hashing each; return the problems (a file whose
    SHA-256 differs from ``expected``, one missing from the archive, one not in ``expected``)."""
    problems, seen = [], set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            name = _safe_member(member)
            target = root.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, target.open("wb") as dst:
                writer = _Hashing(dst)
                while chunk := src.read(1 << 20):
                    writer.write(chunk)
            os.utime(target, (member.mtime, member.mtime))
            seen.add(str(name))
            if str(name) not in expected:
                problems.append(f"media/{name}: not in the manifest")
            elif writer.digest.hexdigest() != expected[str(name)]:
                problems.append(f"media/{name}: SHA-256 differs from the manifest's")
    problems += [f"media/{name}: in the manifest but not in the archive" for name in sorted(set(expected) - seen)]
    return problems


def broker_read(directory: Path) -> bytes | None:
    """The dynamic-security file's bytes, or None when ``directory`` has none (broker not provisioned).

    Mosquitto rewrites the file on every change; a read that caught a half-written file is retried.
    """
    path = directory / DYNSEC_FILE
    for _ in range(20):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            json.loads(data)
            return data
        except ValueError:
            time.sleep(0.1)
    raise BackupError(f"{path} is not valid JSON (read 20 times): is Mosquitto writing it? Try again.")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (it holds password hashes).

    Run as root (the compose ``backup`` service), the file gets the owner of its directory: a
    restored dynamic-security file must stay readable by Mosquitto (uid 1883 in its image).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if os.geteuid() == 0:
        owner = path.parent.stat()
        os.chown(partial, owner.st_uid, owner.st_gid)
    partial.replace(path)
