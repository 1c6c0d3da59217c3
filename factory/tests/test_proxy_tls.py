"""HTTPS and WSS through the reverse proxy docker-compose ships (Caddy, ``deploy/Caddyfile``) with
a locally generated CA (issue 14 item 3): a device that trusts the CA sends telemetry over HTTPS
and the device WebSocket over WSS; without the CA, or dialling a name the certificate does not
hold, the connection is refused before the token is sent; plain HTTP only redirects."""

import json
import ssl

import httpx
import pytest

from conftest import REQUIRE_SERVICES
from factory.certs import make_certs
from tests.proxy import Proxy, caddy_available
from tests.servers import seeded_stack

pytestmark = pytest.mark.timeout(240)
SEED = "from tests.e2e_seed import seed; seed(devices=1, sensor=False)"
READING = {"values": {"temperature": 20.5}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not caddy_available():
        (pytest.fail if REQUIRE_SERVICES else pytest.skip)("caddy is not installed: apt-get install caddy")
    workdir = tmp_path_factory.mktemp("proxy")
    certs = make_certs(workdir / "certs", ["localhost"])
    with seeded_stack(workdir, SEED) as (server, seeded):
        upstream = server.url.removeprefix("http://")
        proxy = Proxy(workdir, upstream=upstream, cert=certs["cert"], key=certs["key"]).start()
        try:
            yield proxy, certs["ca"], seeded["devices"]["press-001"]["token"]
        finally:
            proxy.stop()


def test_a_device_sends_over_https_only_when_it_verifies_the_certificate(stack):
    proxy, ca, token = stack
    url = f"https://localhost:{proxy.https_port}/api/v1/telemetry/"
    headers = {"Authorization": f"Device {token}"}
    response = httpx.post(url, json=READING, headers=headers, verify=ssl.create_default_context(cafile=str(ca)))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(url, json=READING, headers=headers)  # the system's CAs do not know ours
    wrong_host = url.replace("localhost", "127.0.0.1")
    with pytest.raises(httpx.ConnectError):
        httpx.post(wrong_host, json=READING, headers=headers, verify=ssl.create_default_context(cafile=str(ca)))


def test_plain_http_only_redirects_to_https(stack):
    proxy, _, token = stack
    url = f"http://localhost:{proxy.http_port}/api/v1/telemetry/"
    response = httpx.post(url, json=READING, headers={"Authorization": f"Device {token}"})
    assert response.status_code in (301, 308), response.text
    assert response.headers["Location"].startswith("https://localhost")


def test_the_device_websocket_works_over_wss(stack):
    from websockets.sync.client import connect

    proxy, ca, token = stack
    context = ssl.create_default_context(cafile=str(ca))
    url = f"wss://localhost:{proxy.https_port}/ws/devices/"
    with connect(url, ssl=context, additional_headers={"Authorization": f"Device {token}"}, open_timeout=10) as ws:
        ws.send(json.dumps(READING))
        assert json.loads(ws.recv(timeout=10)) == {"accepted": 1}
