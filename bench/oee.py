"""OEE benchmark: a plant of 200 machines over 30 days, by day, from stored telemetry. Not a test.

    .venv/bin/python bench/oee.py [--machines 200] [--days 30] [--sample 300] [--runs 5] [--keep]
                                  [--out bench/results/oee.json]

Against a scratch MariaDB database ``factory_bench_oee`` (re-created, migrated, dropped at the end
unless --keep):

Load   one plant (Europe/Berlin) with two shifts Monday-Saturday (06-14 and 14-22, 45 minutes of
       breaks each), M machines (ideal cycle time 2 s). Per machine and day a state timeline
       (running spells of 20-90 min between down/idle/setup stops of 1-25 min, idle between
       shifts and on Sundays) and cumulative count_total/count_good every --sample seconds,
       reset about once a week. Rows go in with LOAD DATA LOCAL INFILE.
Reads  (client wall time of ``analytics.selectors.oee_compute`` on the plant, as the API calls it)
       cold_day_30d    group_by=day over the 30 closed days with no stored days: every machine-day
                       is computed from raw telemetry and stored (``OEEDayCache``)
       warm_day_30d    the same query again (--runs times): stored days are summed   target <= 1 s
       warm_week_30d   group_by=week over the same range
       live_shift_1d   group_by=shift over the last closed day, computed from raw telemetry
       live_hour_1d    group_by=hour over the last closed day for one line-sized subset (20 machines)
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import MySQLdb

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT, USER = "127.0.0.1", 3306, "root"
DB = "factory_bench_oee"
WORKDIR = Path("/tmp/factory_bench_oee")
TZ = ZoneInfo("Europe/Berlin")
ENV = {
    "DATABASE_URL": f"mysql://{USER}@{HOST}:{PORT}/{DB}",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "factory.settings",
}
STOPS = ("down", "idle", "setup")


def connect(db: str | None = None):
    conn = MySQLdb.connect(host=HOST, port=PORT, user=USER, passwd="", charset="utf8mb4", autocommit=True,
                           local_infile=1)  # fmt: skip
    if db:
        conn.select_db(db)
    return conn


def run_sql(conn, sql: str, params=None) -> None:
    cur = conn.cursor()
    cur.execute(sql, params)
    cur.close()


def setup_django() -> None:
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL"):
        os.environ.pop(name, None)
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_plant(machines: int):
    """Plant, shifts and machines through the project's services."""
    from datetime import time as clock
    from decimal import Decimal

    from analytics.services import shift_save
    from devices.models import Metric
    from devices.services.plants import line_create, plant_create
    from devices.services.registry import device_create

    plant = plant_create(name="Bench plant", time_zone=str(TZ))
    for name, start, end, breaks in (
        ("Early", clock(6), clock(14), [(clock(9), clock(9, 15)), (clock(11, 30), clock(12))]),
        ("Late", clock(14), clock(22), [(clock(17), clock(17, 15)), (clock(19, 30), clock(20))]),
    ):
        shift_save(plant=plant, name=name, start=start, end=end, weekdays=[0, 1, 2, 3, 4, 5],
                   breaks=[{"start": a, "end": b} for a, b in breaks])  # fmt: skip
    devices, line = [], None
    for n in range(machines):
        line = line_create(plant=plant, name=f"Line {n // 20 + 1}") if n % 20 == 0 else line
        devices.append(device_create(uid=f"m-{n:04d}", name=f"Machine {n}", line=line, kind="machine",
                                     ideal_cycle_time=Decimal("2")))  # fmt: skip
    Metric.objects.bulk_create([Metric(name="count_total"), Metric(name="count_good")], ignore_conflicts=True)
    metrics = dict(Metric.objects.filter(name__in=("count_total", "count_good")).values_list("name", "id"))
    return plant, devices, metrics


def machine_day(rnd: random.Random, day_start: datetime, working: bool) -> list[tuple[int, str]]:
    """State changes (epoch seconds, state) of one machine over one local day."""
    t0 = int(day_start.timestamp())
    if not working:
        return [(t0, "idle")]
    events = [(t0, "idle")]
    t = t0 + 6 * 3600 - rnd.randint(0, 600)
    end = t0 + 22 * 3600
    while t < end:
        events.append((t, "running"))
        t += rnd.randint(20, 90) * 60
        if t >= end:
            break
        events.append((t, rnd.choice(STOPS)))
        t += rnd.randint(1, 25) * 60
    events.append((end + rnd.randint(0, 300), "idle"))
    return events


def write_files(devices, metrics, first_day, days: int, sample: int, seed: int) -> tuple[Path, Path, int, int]:
    """TSV files for telemetry_machine_state and telemetry_reading, in primary-key order."""
    WORKDIR.mkdir(parents=True, exist_ok=True)
    states_path, readings_path = WORKDIR / "states.tsv", WORKDIR / "readings.tsv"
    rnd = random.Random(seed)
    n_states = n_readings = 0
    with open(states_path, "w", buffering=1 << 22) as sf, open(readings_path, "w", buffering=1 << 22) as rf:
        for device in devices:
            timeline = []
            for d in range(days):
                day = first_day + timedelta(days=d)
                start = datetime.combine(day, datetime.min.time(), tzinfo=TZ).astimezone(UTC)
                timeline += machine_day(rnd, start, day.weekday() < 6)
            sf.writelines(f"{device.id}\t{ts}\t{state}\n" for ts, state in timeline)
            n_states += len(timeline)
            total = good = rnd.randrange(0, 50_000)
            rows_total, rows_good = [], []
            index = 0
            t_first, t_last = timeline[0][0], timeline[-1][0] + 3600
            for ts in range(t_first, t_last, sample):
                while index + 1 < len(timeline) and timeline[index + 1][0] <= ts:
                    index += 1
                if rnd.random() < sample / (7 * 86400):  # a restart about once a week
                    total = good = 0
                elif timeline[index][1] == "running":
                    made = int(sample / 2 * rnd.uniform(0.8, 0.97))
                    total += made
                    good += made - rnd.randint(0, max(1, made // 50))
                rows_total.append(f"{device.id}\t{metrics['count_total']}\t{ts}\t{total}\n")
                rows_good.append(f"{device.id}\t{metrics['count_good']}\t{ts}\t{good}\n")
            metric_rows = sorted([(metrics["count_total"], rows_total), (metrics["count_good"], rows_good)])
            for _, rows in metric_rows:
                rf.writelines(rows)
                n_readings += len(rows)
    return states_path, readings_path, n_states, n_readings


def load(conn, states_path: Path, readings_path: Path) -> float:
    run_sql(conn, "SET SESSION time_zone = '+00:00'")
    run_sql(conn, "SET SESSION unique_checks = 0, foreign_key_checks = 0")
    started = time.perf_counter()
    run_sql(conn, "LOAD DATA LOCAL INFILE %s INTO TABLE telemetry_machine_state FIELDS TERMINATED BY '\\t' "
            "(device_id, @epoch, state) SET ts = FROM_UNIXTIME(@epoch)", [str(states_path)])  # fmt: skip
    run_sql(conn, "LOAD DATA LOCAL INFILE %s INTO TABLE telemetry_reading FIELDS TERMINATED BY '\\t' "
            "(device_id, metric_id, @epoch, value) SET ts = FROM_UNIXTIME(@epoch)", [str(readings_path)])  # fmt: skip
    return time.perf_counter() - started


def timed(fn, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return {"runs": runs, "p50_s": round(statistics.median(samples), 3), "max_s": round(max(samples), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sample", type=int, default=300, help="seconds between counter messages")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench/results/oee.json"))
    args = parser.parse_args()

    admin = connect()
    run_sql(admin, f"DROP DATABASE IF EXISTS {DB}")
    run_sql(admin, f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        result = run(args)
    finally:
        if not args.keep:
            run_sql(admin, f"DROP DATABASE IF EXISTS {DB}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def run(args) -> dict:
    from analytics.models import OEEDayCache
    from analytics.selectors import Target, oee_compute

    plant, devices, metrics = create_plant(args.machines)
    today = datetime.now(TZ).date()
    first_day = today - timedelta(days=args.days)
    started = time.perf_counter()
    states_path, readings_path, n_states, n_readings = write_files(
        devices, metrics, first_day, args.days, args.sample, args.seed
    )
    generate_s = time.perf_counter() - started
    load_s = load(connect(DB), states_path, readings_path)
    states_path.unlink()
    readings_path.unlink()
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=TZ).astimezone(UTC)
    end = datetime.combine(today, datetime.min.time(), tzinfo=TZ).astimezone(UTC)
    target = Target(plant, devices, "plant", plant.pk)
    last_day = end - timedelta(days=1)

    figures = {}
    cold_started = time.perf_counter()
    body = oee_compute(target, start, end, "day")
    figures["cold_day_30d"] = {"runs": 1, "p50_s": round(time.perf_counter() - cold_started, 3)}
    figures["warm_day_30d"] = timed(lambda: oee_compute(target, start, end, "day"), args.runs)
    figures["warm_week_30d"] = timed(lambda: oee_compute(target, start, end, "week"), args.runs)
    figures["live_shift_1d"] = timed(lambda: oee_compute(target, last_day, end, "shift"), max(1, args.runs // 2))
    line = Target(plant, devices[:20], "line", 0)
    figures["live_hour_1d"] = timed(lambda: oee_compute(line, last_day, end, "hour"), max(1, args.runs // 2))
    total = body["total"]
    return {
        "machines": args.machines,
        "days": args.days,
        "counter_sample_s": args.sample,
        "state_rows": n_states,
        "reading_rows": n_readings,
        "generate_s": round(generate_s, 1),
        "load_s": round(load_s, 1),
        "stored_days": OEEDayCache.objects.count(),
        "plant_total": {k: total[k] for k in ("availability", "performance", "quality", "oee", "teep", "total_count")},
        "periods": len(body["periods"]),
        "timings": figures,
        "target": "warm_day_30d p50 <= 1 s",
    }


if __name__ == "__main__":
    main()
