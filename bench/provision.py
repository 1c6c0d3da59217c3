"""Fleet onboarding benchmark: provision N devices with a plant provisioning key, then connect each
one to the broker over TLS with its token. Not a test: it prints figures (devices/s).

    .venv/bin/python bench/provision.py [--devices 1000]

The platform's side runs in this process: each device calls ``POST /api/v1/device/provision/``
through Django's test client (the view, the service, the registry and the broker provisioning it
triggers, without an HTTP server in front). The broker is a private Mosquitto with the production
configuration and a TLS device listener (``tests/mosquitto.py``, certificates from a local CA).
The database is a scratch SQLite file, or ``DATABASE_URL`` when set (then use a scratch database).
Phase 2 connects every device over TLS (verifying the certificate) one after the other and
counts the accepted connections.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-provision-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    os.environ["VAR_DIR"] = str(workdir)
    for name in ("MQTT_URL", "MQTT_PLATFORM_PASSWORD", "MQTT_BRIDGE_PASSWORD", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from devices.services import broker
    from devices.services.plants import plant_create
    from devices.services.provisioning import provisioning_key_create
    from tests.mosquitto import AuthBroker, connects

    settings.ALLOWED_HOSTS = ["*"]
    # The rate limits (PROVISION_RATE_PER_*, calls per minute) would pace this single caller; off here.
    settings.PROVISION_RATE_PER_KEY = settings.PROVISION_RATE_PER_ADDRESS = 0
    call_command("migrate", verbosity=0, interactive=False)
    server = AuthBroker(workdir / "mosquitto", tls=True)
    server.start()
    try:
        server.settings(settings)
        broker.broker_reconcile()
        plant = plant_create(name="Bench plant", time_zone="UTC")
        _, key = provisioning_key_create(plant=plant, name="bench", max_uses=args.devices)
        client = Client()
        tokens = {}
        started = time.perf_counter()
        for n in range(args.devices):
            uid = f"bench-{n:05d}"
            body = {"uid": uid, "name": uid, "kind": "sensor", "model": "TH-20"}
            response = client.post(
                "/api/v1/device/provision/", body, content_type="application/json",
                HTTP_AUTHORIZATION=f"Provision {key}", REMOTE_ADDR=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
            )  # fmt: skip
            assert response.status_code == 201, response.content
            tokens[uid] = response.json()["token"]
        provision_seconds = time.perf_counter() - started

        started = time.perf_counter()
        ca = server.certs["ca"]
        connected = sum(connects(server.tls_url, uid, token, ca_file=ca) for uid, token in tokens.items())
        connect_seconds = time.perf_counter() - started
    finally:
        server.stop()
    results = {
        "devices": args.devices,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "provision_seconds": round(provision_seconds, 2),
        "provisioned_per_second": round(args.devices / provision_seconds, 1),
        "tls_connected": connected,
        "tls_connect_seconds": round(connect_seconds, 2),
        "tls_connects_per_second": round(connected / connect_seconds, 1),
    }
    print(json.dumps(results, indent=2))
    (ROOT / "bench" / "results" / "provision.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
