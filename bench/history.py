"""History-read benchmark on 10M readings in MariaDB. Not a test: it prints figures.

    .venv/bin/python bench/history.py [--rows 10000000 | --quick] [--runs 60] [--devices 20]
                                      [--keep] [--reuse] [--out bench/results/history.json]

In one run, against a scratch database ``factory_bench`` (dropped and re-created, migrated with
this project's migrations, dropped again at the end unless --keep):

Load (the fast path, timed separately)
  ORM          one plant, one line, D devices (default 20), 5 metrics
  readings     --rows readings (default 10M) spread evenly over 90 days + 6 h: one point every
               ~78 s per series at 10M rows. Written to a TSV file in primary-key order, then one
               ``LOAD DATA LOCAL INFILE`` into telemetry_reading (unique/foreign key checks off)
  rollups      1-minute rollups from raw readings, 1-hour rollups from 1-minute rows: set-based
               ``INSERT ... SELECT ... GROUP BY``, one statement per device; ``last`` is the
               value at MAX(ts) of the bucket (``SUBSTRING_INDEX(GROUP_CONCAT(... ORDER BY ts DESC))``)
  latest       telemetry_latest from the newest raw row per (device, metric)

Reads (--runs timed calls per case, random device/metric/window each call, p50/p95/max in ms,
client wall time of the Python call; one extra untimed call per case first)
  latest_device_cold   selectors.latest_values([one device]), Django cache cleared before each call
  latest_plant_cold    selectors.latest_values(all devices of the plant), cache cleared
  latest_plant_warm    the same with the cache filled (locmem cache; REDIS_URL is unset here)
  raw_1h               selectors.telemetry_raw, a 1-hour window
  buckets_24h_1m       selectors.telemetry_buckets(bucket="1m") over 24 h            target p95 <= 50 ms
  baseline_raw_24h_1m  the same windows aggregated from raw readings with SQL GROUP BY minute
                       (MIN/MAX/AVG/COUNT, what a system without rollups does); timed alternately
                       with buckets_24h_1m on identical parameters
  sql_rollup_24h_1m    diagnostic: the 1-minute rollup rows of the same windows by plain SQL (no ORM)
  buckets_7d_5m        telemetry_buckets(bucket="5m") over 7 days
  auto_90d             bucket_for_auto(90 days) (must pick "1d") + telemetry_buckets  target p95 <= 300 ms
  buckets_90d_1h       telemetry_buckets(bucket="1h") over 90 days

"Now" is the end of the synthetic data (the current minute when the run starts). The InnoDB
buffer pool is the server's (128 MiB by default on Debian, O_DIRECT): the tables are several
times larger, so random windows mostly read from disk, as in ../shared/limits/mariadb_query.py.
"""

import argparse
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import MySQLdb

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT, USER = "127.0.0.1", 3306, "root"
DB = "factory_bench"
WORKDIR = Path("/tmp/factory_bench")
SPAN = timedelta(days=90, hours=6)
METRICS = [  # name, unit, (level, wander per step, mean reversion); None: a cumulative counter
    ("temperature", "°C", (65.0, 0.6, 0.02)),
    ("vibration", "mm/s", (2.5, 0.15, 0.05)),
    ("power", "kW", (12.0, 0.8, 0.03)),
    ("pressure", "bar", (6.0, 0.05, 0.05)),
    ("count_total", "", None),
]
TARGETS_P95_MS = {"buckets_24h_1m": 50.0, "auto_90d": 300.0}
EPOCH = "2000-01-01"  # bucket arithmetic below is in whole minutes/hours since this, so time zones never enter
MINUTE_OF = f"TIMESTAMPADD(MINUTE, TIMESTAMPDIFF(MINUTE, '{EPOCH}', {{col}}), '{EPOCH}')"
HOUR_OF = f"TIMESTAMPADD(HOUR, TIMESTAMPDIFF(HOUR, '{EPOCH}', {{col}}), '{EPOCH}')"

ENV = {
    "DATABASE_URL": f"mysql://{USER}@{HOST}:{PORT}/{DB}",
    "DEBUG": "false",  # else Django keeps every query in connection.queries
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "factory.settings",
}
UNSET = ("REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL")  # locmem cache, no broker, no bridge


# -- database helpers ---------------------------------------------------------------------------


def server(db: str | None = None, **kwargs):
    conn = MySQLdb.connect(host=HOST, port=PORT, user=USER, passwd="", charset="utf8mb4", autocommit=True, **kwargs)
    if db:
        conn.select_db(db)
    return conn


def query(conn, sql: str, params=None) -> list[tuple]:
    cur = conn.cursor()
    cur.execute(sql, params)
    rows = cur.fetchall()
    cur.close()
    return list(rows or [])


def recreate_database() -> None:
    conn = server()
    query(conn, f"DROP DATABASE IF EXISTS {DB}")
    query(conn, f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()


def drop_database() -> None:
    conn = server()
    query(conn, f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


def table_sizes(conn) -> dict:
    rows = query(
        conn,
        "SELECT table_name, table_rows, data_length, index_length FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name LIKE 'telemetry%%'",
        [DB],
    )
    return {
        name: {"rows_estimate": int(n or 0), "data_mb": round(d / 1e6), "index_mb": round(i / 1e6)}
        for name, n, d, i in rows
    }


# -- Django -------------------------------------------------------------------------------------


def django_setup() -> None:
    for name in UNSET:
        os.environ.pop(name, None)
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_fleet(n_devices: int) -> None:
    """Plant, line, devices and metrics through the project's services and the ORM."""
    from devices.models import Metric
    from devices.services.plants import line_create, plant_create
    from devices.services.registry import device_create

    plant = plant_create(name="Bench plant", time_zone="UTC")
    line = line_create(plant=plant, name="Bench line")
    for n in range(n_devices):
        device_create(uid=f"bench-{n:04d}", name=f"Bench machine {n}", line=line, kind="machine")
    Metric.objects.bulk_create([Metric(name=name, unit=unit) for name, unit, _ in METRICS], ignore_conflicts=True)


def fleet():
    from devices.models import Device, Metric, Plant

    plant = Plant.objects.get(name="Bench plant")
    devices = list(Device.objects.filter(plant=plant).order_by("id"))
    by_name = {m.name: m for m in Metric.objects.filter(name__in=[name for name, _, _ in METRICS])}
    metrics = [by_name[name] for name, _, _ in METRICS]
    return plant, devices, metrics


# -- load (fast path) ---------------------------------------------------------------------------


def write_tsv(path: Path, devices, metrics, per_series: int, t0: int, period: float, seed: int) -> int:
    """Readings in primary-key order (device, metric, ts) as ``device\\tmetric\\tepoch\\tvalue`` lines."""
    rnd = random.Random(seed)
    written = 0
    with open(path, "w", buffering=1 << 22) as f:
        for device in devices:
            for metric, (_, _, shape) in zip(metrics, METRICS, strict=True):
                prefix = f"{device.id}\t{metric.id}\t"
                start = t0 + rnd.random() * period
                stamps = [int(start + i * period) for i in range(per_series)]
                uniform = rnd.random
                lines = []
                append = lines.append
                if shape is None:  # piece counter: +0..3 per sample, reset to 0 about once a week
                    value = float(rnd.randrange(0, 100_000))
                    for ts in stamps:
                        value = 0.0 if uniform() < 1e-4 else value + int(uniform() * 4)
                        append(f"{prefix}{ts}\t{value:.0f}\n")
                else:  # mean-reverting random walk around a level
                    level, step, pull = shape
                    value = level
                    for ts in stamps:
                        value += (level - value) * pull + (uniform() - 0.5) * step
                        append(f"{prefix}{ts}\t{value:.3f}\n")
                f.writelines(lines)
                written += len(lines)
    return written


def bulk_session(conn) -> None:
    query(conn, "SET SESSION time_zone = '+00:00'")
    query(conn, "SET SESSION unique_checks = 0, foreign_key_checks = 0")
    # INSERT ... SELECT in REPEATABLE READ would lock every source row; READ COMMITTED does not.
    query(conn, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    # GROUP BY temp tables for one device's buckets stay in memory.
    query(conn, "SET SESSION tmp_table_size = 268435456, max_heap_table_size = 268435456")


def load(args, devices, metrics, t_end: datetime) -> dict:
    info: dict = {}
    series = len(devices) * len(metrics)
    per_series = args.rows // series
    rows = per_series * series
    period = SPAN.total_seconds() / per_series
    t0 = int((t_end - SPAN).timestamp())
    info.update(rows=rows, series=series, per_series=per_series, period_s=round(period, 3))
    WORKDIR.mkdir(parents=True, exist_ok=True)
    path = WORKDIR / f"readings_{rows}.tsv"

    started = time.perf_counter()
    written = write_tsv(path, devices, metrics, per_series, t0, period, args.seed)
    info["tsv_s"] = round(time.perf_counter() - started, 1)
    info["tsv_mb"] = round(path.stat().st_size / 1e6)
    print(f"TSV: {written:,} rows, {info['tsv_mb']} MB in {info['tsv_s']} s (one point every {period:.1f} s)")

    conn = server(DB, local_infile=1)
    restore_local_infile = False
    try:
        if not query(conn, "SELECT @@GLOBAL.local_infile")[0][0]:
            query(conn, "SET GLOBAL local_infile = 1")
            restore_local_infile = True
        bulk_session(conn)

        started = time.perf_counter()
        query(
            conn,
            "LOAD DATA LOCAL INFILE %s INTO TABLE telemetry_reading "
            "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
            "(device_id, metric_id, @epoch, value) SET ts = FROM_UNIXTIME(@epoch)",
            [str(path)],
        )
        info["load_s"] = round(time.perf_counter() - started, 2)
        info["load_rows_per_s"] = round(rows / info["load_s"])
        print(f"LOAD DATA LOCAL INFILE: {rows:,} rows in {info['load_s']} s ({info['load_rows_per_s']:,} rows/s)")
        path.unlink()

        # 1-minute rollups from raw readings, one device per statement (bounded temp tables).
        rollup_1m = (
            "INSERT INTO telemetry_rollup_1m (device_id, metric_id, bucket, min, max, sum, count, last, last_ts) "
            f"SELECT device_id, metric_id, {MINUTE_OF.format(col='ts')} AS b, MIN(value), MAX(value), SUM(value), "
            "COUNT(*), SUBSTRING_INDEX(GROUP_CONCAT(value ORDER BY ts DESC SEPARATOR ','), ',', 1), MAX(ts) "
            "FROM telemetry_reading WHERE device_id = %s GROUP BY device_id, metric_id, b ORDER BY NULL"
        )
        rollup_1h = (
            "INSERT INTO telemetry_rollup_1h (device_id, metric_id, bucket, min, max, sum, count, last, last_ts) "
            f"SELECT device_id, metric_id, {HOUR_OF.format(col='bucket')} AS b, MIN(min), MAX(max), SUM(sum), "
            "SUM(count), SUBSTRING_INDEX(GROUP_CONCAT(last ORDER BY last_ts DESC SEPARATOR ','), ',', 1), "
            "MAX(last_ts) FROM telemetry_rollup_1m WHERE device_id = %s GROUP BY device_id, metric_id, b ORDER BY NULL"
        )
        for name, sql, source in (("rollup_1m", rollup_1m, rows), ("rollup_1h", rollup_1h, None)):
            started = time.perf_counter()
            produced = 0
            for device in devices:
                cur = conn.cursor()
                cur.execute(sql, [device.id])
                produced += cur.rowcount
                cur.close()
            elapsed = time.perf_counter() - started
            if source is None:
                source = info["rollup_1m_rows"]
            info[f"{name}_rows"] = produced
            info[f"{name}_s"] = round(elapsed, 2)
            info[f"{name}_source_rows_per_s"] = round(source / elapsed)
            print(
                f"{name}: {produced:,} buckets from {source:,} rows in {elapsed:.1f} s "
                f"({source / elapsed:,.0f} source rows/s, {source / produced:.1f} source rows per bucket)"
            )

        started = time.perf_counter()
        query(
            conn,
            "INSERT INTO telemetry_latest (device_id, metric_id, ts, value) "
            "SELECT r.device_id, r.metric_id, r.ts, r.value FROM telemetry_reading r "
            "JOIN (SELECT device_id, metric_id, MAX(ts) AS ts FROM telemetry_reading "
            "      GROUP BY device_id, metric_id) m "
            "ON r.device_id = m.device_id AND r.metric_id = m.metric_id AND r.ts = m.ts",
        )
        info["latest_s"] = round(time.perf_counter() - started, 3)
        print(f"telemetry_latest: {series} rows in {info['latest_s'] * 1000:.0f} ms")

        started = time.perf_counter()
        for table in ("telemetry_reading", "telemetry_rollup_1m", "telemetry_rollup_1h", "telemetry_latest"):
            query(conn, f"ANALYZE TABLE {table}")
        info["analyze_s"] = round(time.perf_counter() - started, 1)
    finally:
        if restore_local_infile:
            query(conn, "SET GLOBAL local_infile = 0")
        conn.close()
        path.unlink(missing_ok=True)
    return info


def check_rollups(conn, devices, metrics, t_end: datetime, rnd: random.Random) -> dict:
    """Spot-check rollups against raw readings for random hours (exact min/max/count/last, sum to 1e-6)."""
    checked = 0
    for _ in range(20):
        d, m = rnd.choice(devices).id, rnd.choice(metrics).id
        hour = (t_end - timedelta(hours=rnd.randint(2, 24 * 89))).replace(minute=0, second=0, microsecond=0)
        hour = hour.replace(tzinfo=None)
        raw = query(
            conn,
            "SELECT MIN(value), MAX(value), SUM(value), COUNT(*), "
            "(SELECT value FROM telemetry_reading WHERE device_id = %s AND metric_id = %s AND ts >= %s "
            " AND ts < %s ORDER BY ts DESC LIMIT 1) "
            "FROM telemetry_reading WHERE device_id = %s AND metric_id = %s AND ts >= %s AND ts < %s",
            [d, m, hour, hour + timedelta(hours=1)] * 2,
        )[0]
        if not raw[3]:
            continue
        for table in ("telemetry_rollup_1h", "telemetry_rollup_1m"):
            agg = query(
                conn,
                f"SELECT MIN(min), MAX(max), SUM(sum), SUM(count), "
                f"(SELECT last FROM {table} WHERE device_id = %s AND metric_id = %s AND bucket >= %s "
                f" AND bucket < %s ORDER BY last_ts DESC LIMIT 1) "
                f"FROM {table} WHERE device_id = %s AND metric_id = %s AND bucket >= %s AND bucket < %s",
                [d, m, hour, hour + timedelta(hours=1)] * 2,
            )[0]
            same = (
                raw[0] == agg[0]
                and raw[1] == agg[1]
                and int(raw[3]) == int(agg[3])
                and raw[4] == agg[4]
                and abs(raw[2] - agg[2]) < 1e-6 * max(1.0, abs(raw[2]))
            )
            if not same:
                raise SystemExit(f"rollup mismatch in {table} for device {d} metric {m} hour {hour}: {raw} != {agg}")
        checked += 1
    return {"hours_checked": checked, "ok": True}


# -- measurement --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks of the sorted values."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def stats(times_ms: list[float], sizes: list[int]) -> dict:
    return {
        "runs": len(times_ms),
        "p50_ms": round(percentile(times_ms, 50), 3),
        "p95_ms": round(percentile(times_ms, 95), 3),
        "max_ms": round(max(times_ms), 3),
        "mean_ms": round(statistics.fmean(times_ms), 3),
        "rows_median": int(statistics.median(sizes)),
        "times_ms": [round(t, 3) for t in times_ms],
    }


def timed(fn, params, before=None) -> tuple[float, int]:
    if before is not None:
        before()
    started = time.perf_counter()
    result = fn(*params)
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(result)


def measure(fns: dict, param_list: list, before=None) -> dict:
    """Time each function of ``fns`` on every parameter tuple, alternating functions per tuple.

    The first tuple is a warm-up (code paths, prepared ORM state) and is not counted.
    """
    times = {name: [] for name in fns}
    sizes = {name: [] for name in fns}
    for i, params in enumerate(param_list):
        for name, fn in fns.items():
            ms, n = timed(fn, params, before)
            if i:
                times[name].append(ms)
                sizes[name].append(n)
    return {name: stats(times[name], sizes[name]) for name in fns}


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def run_reads(args, plant, devices, metrics, t_end: datetime) -> tuple[dict, dict]:
    from django.core.cache import cache
    from django.db import connection

    from devices import selectors

    rnd = random.Random(args.seed + 1)
    t0 = t_end - SPAN
    tz = plant.tz
    runs = args.runs + 1  # + warm-up
    ids = [d.id for d in devices]
    results: dict = {}
    extra: dict = {}

    def window(length: timedelta, align: int) -> tuple[datetime, datetime]:
        """A random ``length`` window inside the data, starting on a multiple of ``align`` seconds."""
        room = (t_end - t0 - length).total_seconds()
        start = int(t0.timestamp() + rnd.random() * room) // align * align + align
        start_dt = datetime.fromtimestamp(start, UTC)
        return start_dt, start_dt + length

    def series_windows(length: timedelta, align: int = 60) -> list[tuple]:
        return [(rnd.choice(devices), rnd.choice(metrics), *window(length, align)) for _ in range(runs)]

    def sql(statement: str):
        def run(device, metric, start, end):
            with connection.cursor() as cursor:
                cursor.execute(statement, [device.id, metric.id, naive(start), naive(end)])
                return cursor.fetchall()

        return run

    def report(case: dict) -> None:
        for name, r in case.items():
            print(
                f"  {name:<22} p50 {r['p50_ms']:8.2f}  p95 {r['p95_ms']:8.2f}  max {r['max_ms']:8.2f} ms"
                f"  rows {r['rows_median']}",
                flush=True,
            )
        results.update(case)

    print(f"\nReads: {args.runs} timed calls per case (+1 warm-up), random device/metric/window")

    # Latest values: one device, the whole plant; cold (cache cleared) and warm.
    one_device = [([rnd.choice(ids)],) for _ in range(runs)]
    report(measure({"latest_device_cold": selectors.latest_values}, one_device, before=cache.clear))
    report(measure({"latest_plant_cold": selectors.latest_values}, [(ids,)] * runs, before=cache.clear))
    selectors.latest_values(ids)
    report(measure({"latest_plant_warm": selectors.latest_values}, [(ids,)] * runs))

    report(measure({"raw_1h": selectors.telemetry_raw}, series_windows(timedelta(hours=1), align=1)))

    # 24 h in 1-minute buckets: the selector and the no-rollup baseline, alternately on the same windows.
    baseline_sql = (
        f"SELECT {MINUTE_OF.format(col='ts')} AS b, MIN(value), MAX(value), AVG(value), COUNT(*) "
        "FROM telemetry_reading WHERE device_id = %s AND metric_id = %s AND ts >= %s AND ts < %s "
        "GROUP BY b ORDER BY b"
    )
    rollup_sql = (
        "SELECT bucket, min, max, sum, count, last, last_ts FROM telemetry_rollup_1m "
        "WHERE device_id = %s AND metric_id = %s AND bucket >= %s AND bucket < %s ORDER BY bucket"
    )
    day = series_windows(timedelta(hours=24))
    # Same answer? Point counts per window from both paths must agree.
    for device, metric, start, end in day[:10]:
        got = sum(b.count for b in selectors.telemetry_buckets(device, metric, start, end, "1m", tz))
        want = sum(row[4] for row in sql(baseline_sql)(device, metric, start, end))
        if got != want:
            print(f"  WARNING: 24 h window of device {device.id}/{metric.id}: rollups count {got}, raw {want}")
            extra["count_mismatch"] = True
    report(
        measure(
            {
                "buckets_24h_1m": lambda d, m, s, e: selectors.telemetry_buckets(d, m, s, e, "1m", tz),
                "baseline_raw_24h_1m": sql(baseline_sql),
            },
            day,
        )
    )
    report(measure({"sql_rollup_24h_1m": sql(rollup_sql)}, day))

    report(
        measure(
            {"buckets_7d_5m": lambda d, m, s, e: selectors.telemetry_buckets(d, m, s, e, "5m", tz)},
            series_windows(timedelta(days=7), align=300),
        )
    )

    chosen: set = set()

    def auto(device, metric, start, end):
        bucket = selectors.bucket_for_auto(start, end)
        chosen.add(bucket)
        return selectors.telemetry_buckets(device, metric, start, end, bucket, tz)

    report(measure({"auto_90d": auto}, series_windows(timedelta(days=90))))
    extra["auto_90d_bucket"] = sorted(chosen)
    if chosen != {"1d"}:
        print(f"  WARNING: bucket_for_auto picked {sorted(chosen)} for 90 days, expected ['1d']")
    report(
        measure(
            {"buckets_90d_1h": lambda d, m, s, e: selectors.telemetry_buckets(d, m, s, e, "1h", tz)},
            series_windows(timedelta(days=90), align=3600),
        )
    )
    return results, extra


# -- output -------------------------------------------------------------------------------------

LABELS = {
    "latest_device_cold": "latest values, 1 device (cold cache)",
    "latest_plant_cold": "latest values, plant (cold cache)",
    "latest_plant_warm": "latest values, plant (warm cache)",
    "raw_1h": "raw points, 1 h",
    "buckets_24h_1m": "24 h in 1m buckets (rollups)",
    "baseline_raw_24h_1m": "24 h by minute from raw (baseline)",
    "sql_rollup_24h_1m": "24 h 1m rollup rows, plain SQL",
    "buckets_7d_5m": "7 d in 5m buckets",
    "auto_90d": "90 d auto (1d buckets)",
    "buckets_90d_1h": "90 d in 1h buckets",
}


def print_table(results: dict) -> None:
    header = f"{'case':<38} {'runs':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'rows':>6}  target"
    print("\n" + header)
    print("-" * len(header))
    for name, r in results.items():
        target = TARGETS_P95_MS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"p95 <= {target:.0f} ms: {'MET' if r['p95_ms'] <= target else 'MISSED'}"
        print(
            f"{LABELS.get(name, name):<38} {r['runs']:>4} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} "
            f"{r['max_ms']:>8.2f} {r['rows_median']:>6}  {verdict}"
        )


def provenance() -> dict:
    selectors_py = ROOT / "devices" / "selectors.py"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        head = None
    return {"git_head": head, "selectors_sha256": hashlib.sha256(selectors_py.read_bytes()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="readings to load (default 10,000,000)")
    parser.add_argument("--quick", action="store_true", help="1,000,000 readings")
    parser.add_argument("--runs", type=int, default=60, help="timed calls per case (default 60)")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help=f"keep the {DB} database at the end")
    parser.add_argument("--reuse", action="store_true", help=f"reuse a {DB} left by --keep (same --rows)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "history.json"))
    args = parser.parse_args()
    if args.quick:
        args.rows = 1_000_000
    if args.runs < 50:
        parser.error("--runs must be at least 50")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # still drop the database

    data: dict = {
        "bench": "history",
        "argv": sys.argv,
        "args": vars(args),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        **provenance(),
    }
    conn = server()
    variables = ("version", "innodb_buffer_pool_size", "innodb_flush_method", "innodb_flush_log_at_trx_commit")
    row = query(conn, "SELECT " + ", ".join(f"@@{name}" for name in variables))[0]
    data["server"] = dict(zip(variables, row, strict=True))
    exists = query(conn, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", [DB])[0][0]
    reuse = bool(args.reuse and exists)
    conn.close()

    try:
        if not reuse:
            recreate_database()
        django_setup()
        from django.core.management import call_command
        from django.db import connection

        if reuse:
            print(f"Reusing database {DB}")
            plant, devices, metrics = fleet()
            last = query_django(connection, "SELECT MAX(ts), COUNT(*) FROM telemetry_reading")[0]
            t_end = last[0].replace(tzinfo=UTC) + timedelta(seconds=1)
            data["load"] = {"reused": True, "rows": last[1]}
        else:
            started = time.perf_counter()
            call_command("migrate", verbosity=0, interactive=False)
            print(f"Database {DB}: created and migrated in {time.perf_counter() - started:.1f} s")
            create_fleet(args.devices)
            plant, devices, metrics = fleet()
            t_end = datetime.now(UTC).replace(second=0, microsecond=0)
            connection.close()
            data["load"] = load(args, devices, metrics, t_end)
        conn = server(DB)
        data["rollup_check"] = check_rollups(conn, devices, metrics, t_end, random.Random(args.seed))
        data["tables"] = table_sizes(conn)
        conn.close()
        print(f"Rollups spot-checked against raw: {data['rollup_check']['hours_checked']} random hours, exact")
        for name, t in data["tables"].items():
            print(f"  {name:<24} ~{t['rows_estimate']:>11,} rows  data {t['data_mb']:>5} MB  index {t['index_mb']} MB")

        data["t_end"] = t_end.isoformat()
        data["devices"], data["metrics"] = len(devices), [m.name for m in metrics]
        results, extra = run_reads(args, plant, devices, metrics, t_end)
        data["cases"], data["checks"] = results, extra
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110 - Django may not be set up yet
            pass
        if not args.keep:
            drop_database()
            print(f"Dropped database {DB}")

    print_table(results)
    rollup, raw = results["buckets_24h_1m"], results["baseline_raw_24h_1m"]
    ratio = {
        "p50": round(raw["p50_ms"] / rollup["p50_ms"], 2),
        "p95": round(raw["p95_ms"] / rollup["p95_ms"], 2),
    }
    data["ratio_raw_over_rollup_24h_1m"] = ratio
    print(
        f"\n24 h in 1-minute buckets, raw GROUP BY / rollup selector: p50 {ratio['p50']}x, p95 {ratio['p95']}x "
        f"(>1 means the rollup path is faster)"
    )
    load_info = data.get("load", {})
    if "load_rows_per_s" in load_info:
        print(
            f"Load: {load_info['rows']:,} readings, LOAD DATA {load_info['load_s']} s "
            f"({load_info['load_rows_per_s']:,} rows/s); 1m rollups {load_info['rollup_1m_s']} s; "
            f"1h rollups {load_info['rollup_1h_s']} s; latest {load_info['latest_s']} s"
        )
    data["targets"] = {
        name: {"p95_ms": results[name]["p95_ms"], "target_ms": t, "met": results[name]["p95_ms"] <= t}
        for name, t in TARGETS_P95_MS.items()
    }
    data["loadavg_end"] = os.getloadavg()
    print(
        f"Load average at start {data['loadavg_start'][0]:.2f}, at end {data['loadavg_end'][0]:.2f} "
        f"({os.cpu_count()} CPUs; other work on the machine skews the figures)"
    )
    data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, default=str))
    print(f"[results written to {out}]")


def query_django(connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


if __name__ == "__main__":
    main()
