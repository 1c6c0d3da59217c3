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

``--mode import`` onboards the fleet by bulk import instead (``POST /api/v1/devices/import/``, a
plant admin's CSV of N devices): the dry run, the apply with a token per device (each one also the
device's broker password), the apply of another N devices without tokens, then phase 2 as above.
Results go to bench/results/import.json.
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
    parser.add_argument("--mode", choices=["provision", "import"], default="provision")
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
        if args.mode == "import":
            imported, tokens = bulk_import(client, plant, args.devices)
        for n in range(args.devices if args.mode == "provision" else 0):
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
    if args.mode == "import":
        results = {"devices": args.devices, "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]}
        results |= imported | {"tls_connected": connected, "tls_connect_seconds": round(connect_seconds, 2)}
        print(json.dumps(results, indent=2))
        (ROOT / "bench" / "results" / "import.json").write_text(json.dumps(results, indent=2) + "\n")
        return
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


def bulk_import(client, plant, count: int) -> tuple[dict, dict]:
    """Import ``count`` devices with tokens, then ``count`` more without; the figures and the tokens."""
    from django.contrib.auth import get_user_model

    from accounts.roles import Role
    from accounts.services import member_set_role

    admin = get_user_model().objects.create_user("bench-admin", is_staff=True)
    member_set_role(plant=plant, user=admin, role=Role.ADMIN)
    client.force_login(admin)

    def csv_of(prefix: str) -> bytes:
        rows = [f"{prefix}-{n:05d},Imported {n},sensor,{plant.name},TH-20,60" for n in range(count)]
        return ("uid,name,kind,plant,model,expected_interval\n" + "\n".join(rows) + "\n").encode()

    def post(body: bytes, query: str, expected: int) -> tuple[dict, float]:
        started = time.perf_counter()
        response = client.post(f"/api/v1/devices/import/{query}", data=body, content_type="text/csv")
        seconds = time.perf_counter() - started
        assert response.status_code == expected, response.content[:500]
        return response.json(), seconds

    with_tokens = csv_of("bench")
    _, dry_seconds = post(with_tokens, "?dry_run=1", 200)
    applied, token_seconds = post(with_tokens, "?issue_tokens=1", 201)
    _, plain_seconds = post(csv_of("plain"), "", 201)
    figures = {
        "import_dry_run_seconds": round(dry_seconds, 2),
        "import_with_tokens_seconds": round(token_seconds, 2),
        "imported_with_tokens_per_second": round(count / token_seconds, 1),
        "import_without_tokens_seconds": round(plain_seconds, 2),
        "imported_without_tokens_per_second": round(count / plain_seconds, 1),
    }
    return figures, {entry["uid"]: entry["token"] for entry in applied["tokens"]}


if __name__ == "__main__":
    main()
