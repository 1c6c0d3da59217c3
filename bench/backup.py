"""Backup and restore of a MariaDB installation with many readings. Not a test: it prints figures.

    .venv/bin/python bench/backup.py [--rows 2000000] [--devices 20] [--out bench/results/backup.json]

A scratch database ``factory_bench_backup`` (dropped and re-created, migrated) gets one plant,
``--devices`` machines and ``--rows`` readings over 5 metrics (multi-row INSERT straight through
mysqlclient). Then, each timed by its wall clock:

  dump_baseline   ``mariadb-dump`` with the same options into /dev/null: what the dump tool alone costs
  dump_gzip_baseline  the same piped into ``gzip -1`` (what one would run by hand)
  backup          ``manage.py backup --out DIR`` (the dump, row counting and gzip in one pass, media, manifest)
  load_baseline   ``gunzip | mariadb`` of that dump into an empty database: what the client alone costs
  restore         ``manage.py restore --from DIR`` into another empty database (load + verification)

The scratch databases are dropped at the end.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import MySQLdb

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT, USER = "127.0.0.1", 3306, "root"
DB, RESTORED, BASELINE = "factory_bench_backup", "factory_bench_backup_r", "factory_bench_backup_b"
METRICS = ["temperature", "vibration", "power", "pressure", "count_total"]


def env_for(db: str, var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL")}
    return env | {
        "DATABASE_URL": f"mysql://{USER}@{HOST}:{PORT}/{db}",
        "VAR_DIR": str(var_dir),
        "DEBUG": "true",
        "LOG_LEVEL": "WARNING",
    }


def sql(statement: str, db: str | None = None, rows=None) -> None:
    conn = MySQLdb.connect(host=HOST, port=PORT, user=USER, passwd="", charset="utf8mb4", autocommit=True)
    try:
        cur = conn.cursor()
        if db:
            conn.select_db(db)
        cur.executemany(statement, rows) if rows is not None else cur.execute(statement)
    finally:
        conn.close()


def recreate(db: str) -> None:
    sql(f"DROP DATABASE IF EXISTS {db}")
    sql(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def manage(env: dict, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return time.monotonic() - started, result.stdout


def timed_shell(command: str, env: dict | None = None) -> float:
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, env=env)  # noqa: S603, S607
    return time.monotonic() - started


def load(env: dict, rows: int, devices: int) -> None:
    seed = (
        "import json; from devices.models import Metric; from devices.services.plants import line_create, "
        "plant_create; from devices.services.registry import device_create\n"
        "line = line_create(plant=plant_create(name='Bench plant', time_zone='UTC'), name='Bench line')\n"
        f"ids = [device_create(uid=f'bench-{{n:04d}}', name=f'Bench {{n}}', line=line, kind='machine').pk "
        f"for n in range({devices})]\n"
        f"metrics = [Metric.objects.get_or_create(name=n)[0].pk for n in {METRICS!r}]\n"
        "print(json.dumps([ids, metrics]))"
    )
    ids, metrics = json.loads(manage(env, "shell", "-c", seed)[1].strip().splitlines()[-1])
    per_series = rows // (len(ids) * len(metrics))
    start, rnd = datetime.now(UTC) - timedelta(days=20), random.Random(1)
    insert = "INSERT INTO telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)"
    for device in ids:
        for metric in metrics:
            batch = [
                (device, metric, (start + timedelta(seconds=17 * i)).strftime("%Y-%m-%d %H:%M:%S.%f"), rnd.random())
                for i in range(per_series)
            ]
            for chunk in range(0, len(batch), 5000):
                sql(insert, DB, batch[chunk : chunk + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "backup.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="factory_bench_backup_"))
    source, restored = env_for(DB, work / "var"), env_for(RESTORED, work / "restored")
    try:
        for db in (DB, RESTORED, BASELINE):
            recreate(db)
        manage(source, "migrate", "--noinput", "-v0")
        started = time.monotonic()
        load(source, args.rows, args.devices)
        loaded = time.monotonic() - started
        options = "--single-transaction --quick --routines --triggers --hex-blob --no-tablespaces"
        figures = {"rows_loaded_s": round(loaded, 1)}
        dump_command = f"mariadb-dump -u{USER} -h{HOST} {options} {DB}"
        figures["dump_baseline_s"] = timed_shell(f"{dump_command} > /dev/null")
        figures["dump_gzip_baseline_s"] = timed_shell(f"{dump_command} | gzip -1 > {work / 'baseline.sql.gz'}")
        figures["backup_s"], out = manage(source, "backup", "--out", str(work / "backup"), "--no-broker")
        manifest = json.loads((work / "backup" / "manifest.json").read_text())
        dump = work / "backup" / manifest["database"]["file"]
        figures["load_baseline_s"] = timed_shell(f"gunzip -c {dump} | mariadb -u{USER} -h{HOST} {BASELINE}")
        figures["restore_s"], restore_out = manage(restored, "restore", "--from", str(work / "backup"), "--no-broker")
        assert "restore complete and verified" in restore_out, restore_out
        readings = manifest["database"]["tables"]["telemetry_reading"]
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "readings": readings,
            "rows": sum(manifest["database"]["tables"].values()),
            "dump_mb": round(manifest["database"]["bytes"] / 1e6, 1),
            **{k: round(v, 1) for k, v in figures.items()},
            "backup_rows_per_s": round(readings / figures["backup_s"]),
            "restore_rows_per_s": round(readings / figures["restore_s"]),
            "backup_vs_dump_baseline": round(figures["backup_s"] / figures["dump_baseline_s"], 2),
            "backup_vs_dump_gzip_baseline": round(figures["backup_s"] / figures["dump_gzip_baseline_s"], 2),
            "restore_vs_load_baseline": round(figures["restore_s"] / figures["load_baseline_s"], 2),
            "load_average": os.getloadavg()[0],
        }
        print(json.dumps(result, indent=1))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        for db in (DB, RESTORED, BASELINE):
            sql(f"DROP DATABASE IF EXISTS {db}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
