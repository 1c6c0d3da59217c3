"""Alarm raised by a Celery worker → toast in the operator's browser, on the real stack. Not a test: it
prints figures (issue 13's goal: a toast within 2 s of the reading).

    source .helper-env  # DATABASE_URL=mysql://..., REDIS_URL=redis://..., CELERY_BROKER_URL=redis://...
    .venv/bin/python bench/alarm_toast.py [--alarms 20] [--gap 1.0] [--workers 2] [--concurrency 2]

What it does:
1. a scratch database (``e2e_<pid>_...`` next to DATABASE_URL's, dropped at the end), migrated and
   seeded with ``--alarms`` + 1 machines in plant A (rule "vibration > 5", warning), an operator
   and an in-app channel routed to the plant (the toast's channel);
2. the production shape (bench/latency.py's): Uvicorn with ``--workers`` processes, DEBUG off, the
   broker kept (alert evaluation is never inline in the web process), and a real ``celery worker``
   (prefork, ``--concurrency`` processes, as docker-compose.yml's) on the same database, broker and
   channel-layer prefix, so its live events reach the browsers through Redis;
3. Chromium with the operator's plant overview open; a MutationObserver on ``#toasts`` notes, for
   each toast added, the time of the next animation frame (the frame that paints it);
4. warm-up, not measured: every machine posts a normal reading (online, as in a running plant) and
   the first one raises one alarm (the worker's first task);
5. then each other machine in turn POSTs ``{"vibration": 9.5}`` and the script waits for its toast,
   then ``--gap`` seconds. Latency = toast painted − just before the POST. A channel sends at most
   one message per grouping window (``NOTIFY_GROUP_WINDOW_SECONDS``, 60 s: alarms raised together
   arrive as one digest), so the window is ``--window`` = 1 s here: each alarm is the first of its
   window, as a lone alarm in production is (a second one within the minute waits for the next
   window by design; that is not what the 2 s goal is about).

The clock: both ends read the system's real-time clock on this one machine: Python's ``time.time()``
before the POST, and in the page ``performance.timeOrigin + performance.now()`` (the wall-clock time
the page's clock started at, plus a monotonic offset; Chromium coarsens it to 0.1 ms). No clock of
another machine is involved; the only error is the wall clock being stepped during a run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from latency import PRODUCTION_ENV, percentile, uvicorn_command  # bench/latency.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")

SEED = """
from tests.e2e_seed import seed
from alerts.tests.factories import make_channel, make_route
from devices.models import Plant
data = seed(devices={devices}, sensor=False)
make_route(make_channel(Plant.objects.get(pk=data["plants"]["A"]), "inapp", name="Dashboard"))
"""

# Each toast added to #toasts: [title, inserted, painted], times on the real-time clock (ms since the epoch).
OBSERVE = """() => {
  const now = () => performance.timeOrigin + performance.now();
  window.__toastTimes = [];
  new MutationObserver((records) => {
    for (const record of records) for (const node of record.addedNodes) {
      if (!node.classList || !node.classList.contains("toast")) continue;
      const title = node.querySelector(".toast-title").textContent, inserted = now();
      requestAnimationFrame(() => window.__toastTimes.push([title, inserted, now()]));
    }
  }).observe(document.getElementById("toasts"), {childList: true});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=20, help="alarms measured (one machine each)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between a toast and the next reading")
    parser.add_argument("--window", type=int, default=1, help="NOTIFY_GROUP_WINDOW_SECONDS (production: 60)")
    parser.add_argument("--workers", type=int, default=2, help="Uvicorn worker processes (production: 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (production: 2)")
    options = parser.parse_args()

    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    import httpx
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS
    from tests.servers import Daphne, ServerDatabase
    from tests.worker import start_worker, stop_worker

    if (
        not settings.REDIS_URL
        or not settings.DATABASES["default"]["ENGINE"].endswith("mysql")
        or settings.CELERY_TASK_ALWAYS_EAGER
    ):
        sys.exit("Set DATABASE_URL=mysql://..., REDIS_URL=redis://... and CELERY_BROKER_URL=redis://... (real stack).")
    workdir = Path(f"/tmp/bench-alarm-toast-{os.getpid()}")
    database = ServerDatabase(workdir, broker=True).create()
    # A channel sends at most one message per grouping window (alarms raised together arrive as one
    # digest); a 1 s window makes every alarm here the first of its window, as a lone alarm is.
    database.env.update(PRODUCTION_ENV, NOTIFY_GROUP_WINDOW_SECONDS=str(options.window))
    database.manage("collectstatic", "--noinput", "-v0")
    server = worker = None
    try:
        seeded = database.run_python(SEED.format(devices=options.alarms + 1))
        plant = seeded["plants"]["A"]
        devices = sorted((uid, d) for uid, d in seeded["devices"].items() if d["plant"] == plant)
        args = uvicorn_command(options.workers)
        server = Daphne(database.env, log=workdir / "server.log", server_args=args).start()
        worker = start_worker(database.env, purge=True, name=f"bench-{os.getpid()}@localhost",
                              concurrency=options.concurrency)  # fmt: skip
        print(
            f"Uvicorn ({options.workers} workers) {server.url}, Celery worker (prefork, {options.concurrency}), "
            f"{options.alarms} alarms, {options.gap} s apart"
        )
        with sync_playwright() as playwright, httpx.Client(base_url=server.url) as client:

            def post(token: str, vibration: float) -> None:
                response = client.post(
                    "/api/v1/telemetry/",
                    json={"values": {"vibration": vibration}, "state": "running"},
                    headers={"Authorization": f"Device {token}"},
                )
                assert response.status_code == 202, response.text

            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/accounts/login/")
            page.get_by_label("Username").fill("operator")
            page.get_by_label("Password").fill(seeded["password"])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            page.goto(f"{server.url}/plants/{plant}/")
            page.wait_for_function("() => window.__live && window.__live.ready", timeout=30000)
            page.evaluate(OBSERVE)

            for _uid, device in devices:  # warm-up: every machine online, in its state
                post(device["token"], 1.0)
            time.sleep(2)
            latencies, inserted, acks = [], [], []
            for index, (uid, device) in enumerate(devices):
                posted = time.time() * 1000
                post(device["token"], 9.5)
                acks.append(time.time() * 1000 - posted)
                find = f"() => window.__toastTimes.find(([text]) => text.includes({uid + ':'!r}))"
                page.wait_for_function(find, timeout=60000)
                _text, shown, painted = page.evaluate(find)
                if index:  # the first alarm is the warm-up (the worker's first task)
                    latencies.append(painted - posted)
                    inserted.append(shown - posted)
                time.sleep(options.gap)
            browser.close()

        def figures(values: list[float]) -> str:
            return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms, max {max(values):.0f} ms"

        print(f"reading POST → toast painted ({len(latencies)} alarms): {figures(latencies)}")
        print(f"reading POST → toast in the DOM: {figures(inserted)}")
        print(f"reading POST → 202: {figures(acks[1:])}")
    finally:
        if worker:
            stop_worker(worker)
        if server:
            server.stop()
        database.drop()


if __name__ == "__main__":
    main()
