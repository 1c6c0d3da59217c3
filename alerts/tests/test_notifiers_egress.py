"""Notification URLs cannot reach inside (SSRF): internal targets are refused when a channel is
saved and when it sends, with real local receivers listening that must see nothing; redirects
are not followed; the allowlist lets an on-premises receiver through."""

import ipaddress
import socket
import ssl

import pytest

from alerts.models import Delivery, NotificationChannel
from alerts.tests.conftest import HttpRecorder
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings
from conftest import assert_status

pytestmark = pytest.mark.django_db
URL = "/api/v1/notification-channels/"
SECRET = "k" * 16


def _loopback_hostname() -> str:
    """This machine's own name when it resolves to loopback (as in /etc/hosts), else ``localhost``."""
    name = socket.gethostname()
    try:
        addresses = {ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(name, None)}
    except OSError:
        return "localhost"
    return name if addresses and all(a.is_loopback for a in addresses) else "localhost"


# Each: the host part of a URL, and which receiver listens behind it ("v4", "v6" or none).
INTERNAL = [
    ("127.0.0.1", "v4"),
    ("[::1]", "v6"),
    ("localhost", "v4"),
    ("0.0.0.0", "v4"),  # Linux connects 0.0.0.0 to the local host
    ("10.0.0.1", None),
    ("169.254.169.254", None),  # the cloud metadata service
    (_loopback_hostname(), "v4"),  # a host name that resolves to loopback
    ("2130706433", "v4"),  # 127.0.0.1 as one decimal number
    ("[::ffff:127.0.0.1]", "v4"),  # IPv4-mapped IPv6
]


@pytest.fixture
def receivers():
    with HttpRecorder("127.0.0.1") as v4, HttpRecorder("::1") as v6:
        yield {"v4": v4, "v6": v6}


def _url(host: str, behind: str | None, receivers) -> str:
    port = receivers[behind].port if behind else 80
    return f"http://{host}:{port}/hook"


@pytest.mark.parametrize(("host", "behind"), INTERNAL)
def test_refuses_an_internal_webhook_url_when_the_channel_is_saved(client_for, plant_admin, plant_a, host, behind):
    payload = {"plant": plant_a.pk, "name": "Hook", "kind": "webhook", "config": {"url": f"http://{host}/hook"}}
    body = assert_status(client_for(plant_admin).post(URL, payload, format="json"), 400).json()
    message = " ".join(body["errors"]["config"]["url"])
    assert "internal address" in message and "NOTIFIER_INTERNAL_ALLOWLIST" in message, message
    assert not NotificationChannel.objects.exists()


def test_refuses_changing_a_webhook_url_to_an_internal_one(client_for, plant_admin, plant_a):
    channel = make_channel(plant_a, "webhook", {"url": "https://93.184.215.14/hook", "secret": SECRET})
    patch = {"config": {"url": "http://169.254.169.254/latest/meta-data/", "secret": "********"}}
    body = assert_status(client_for(plant_admin).patch(f"{URL}{channel.pk}/", patch, format="json"), 400).json()
    assert "NOTIFIER_INTERNAL_ALLOWLIST" in str(body["errors"]["config"]["url"])
    channel.refresh_from_db()
    assert channel.config["url"] == "https://93.184.215.14/hook"


def test_refuses_an_unresolvable_webhook_host_when_the_channel_is_saved(client_for, plant_admin, plant_a):
    payload = {"plant": plant_a.pk, "name": "Hook", "kind": "webhook", "config": {"url": "https://nowhere.invalid/"}}
    body = assert_status(client_for(plant_admin).post(URL, payload, format="json"), 400).json()
    assert "cannot be resolved" in str(body["errors"]["config"]["url"])


def test_refuses_an_internal_webhook_url_in_the_admin(plant_admin_client, plant_a):
    form = {"plant": plant_a.pk, "name": "Hook", "kind": "webhook", "config": '{"url": "http://10.0.0.1/"}'}
    page = assert_status(plant_admin_client.post("/admin/alerts/notificationchannel/add/", form), 200).content
    assert b"&#x27;10.0.0.1&#x27; is an internal address" in page and b"NOTIFIER_INTERNAL_ALLOWLIST" in page
    assert not NotificationChannel.objects.exists()


@pytest.mark.parametrize(("host", "behind"), INTERNAL)
def test_refuses_to_send_to_an_internal_webhook_url(run, plant_a, press, receivers, max_retries, host, behind):
    # Saved before (an allowlist since narrowed, or a DNS answer that changed): checked again at send.
    max_retries(0)
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": _url(host, behind, receivers), "secret": SECRET}))
    run(post_readings, press, (0, 99))
    assert receivers["v4"].requests == [] and receivers["v6"].requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert "internal address" in delivery.error and "NOTIFIER_INTERNAL_ALLOWLIST" in delivery.error
    assert NotificationChannel.objects.get().status == NotificationChannel.Status.FAILING


def test_refuses_to_send_sms_through_an_internal_api_url(run, plant_a, press, receivers, settings):
    settings.SMS_API_URL, settings.SMS_ACCOUNT_SID = receivers["v4"].url, "AC1"
    settings.SMS_AUTH_TOKEN, settings.SMS_FROM = "t", "+49301"
    make_rule(plant_a)
    make_route(make_channel(plant_a, "sms", {"to": ["+4915112345678"]}))
    run(post_readings, press, (0, 99))
    assert receivers["v4"].requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED and "NOTIFIER_INTERNAL_ALLOWLIST" in delivery.error


@pytest.mark.parametrize(
    ("host", "behind", "allowlist"),
    [
        ("127.0.0.1", "v4", ["127.0.0.0/8"]),
        ("[::1]", "v6", ["::1"]),
        ("localhost", "v4", ["localhost"]),
    ],
)
def test_delivers_to_a_local_receiver_the_allowlist_names(
    run, plant_a, press, receivers, settings, client_for, plant_admin, host, behind, allowlist
):
    settings.NOTIFIER_INTERNAL_ALLOWLIST = allowlist
    url = _url(host, behind, receivers)
    payload = {"plant": plant_a.pk, "name": "On-prem", "kind": "webhook", "config": {"url": url, "secret": SECRET}}
    assert_status(client_for(plant_admin).post(URL, payload, format="json"), 201)
    make_rule(plant_a)
    make_route(NotificationChannel.objects.get())
    run(post_readings, press, (0, 99))
    assert [r["path"] for r in receivers[behind].requests] == ["/hook"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_does_not_follow_a_redirect_to_an_internal_address(run, plant_a, press, receivers, settings):
    # The receiver is allowlisted by name; the address it redirects to is not.
    settings.NOTIFIER_INTERNAL_ALLOWLIST = ["localhost"]
    inside = receivers["v6"]
    receivers["v4"].statuses = [307]
    receivers["v4"].headers = {"Location": f"{inside.url}/admin"}
    make_rule(plant_a)
    make_route(
        make_channel(plant_a, "webhook", {"url": f"http://localhost:{receivers['v4'].port}/hook", "secret": SECRET})
    )
    run(post_readings, press, (0, 99))
    assert len(receivers["v4"].requests) == 1
    assert inside.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error.startswith("HTTP 307 Temporary Redirect from localhost: redirects are not followed")


def _self_signed(tmp_path, name: str):
    """A certificate for ``name`` and its key, as files (the certificate is its own CA)."""
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    # Fixed, wide validity: the tests' clock is frozen (time_machine), OpenSSL's is not.
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2100, 1, 1, tzinfo=UTC))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_speaks_tls_to_the_host_name_while_connecting_to_the_checked_address(
    run, plant_a, press, settings, tmp_path, monkeypatch
):
    # The connection goes to the resolved address, yet SNI, the certificate check and the Host
    # header name the host: an HTTPS receiver works as with any client.
    settings.NOTIFIER_INTERNAL_ALLOWLIST = ["localhost"]
    cert_file, key_file = _self_signed(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust it as a CA (read by ssl's default context)
    server_names = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    with HttpRecorder("127.0.0.1", tls=context) as receiver:
        make_rule(plant_a)
        make_route(
            make_channel(plant_a, "webhook", {"url": f"https://localhost:{receiver.port}/hook", "secret": SECRET})
        )
        run(post_readings, press, (0, 99))
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert server_names == ["localhost"]
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"


def test_refuses_a_certificate_for_another_name(run, plant_a, press, settings, tmp_path, monkeypatch, max_retries):
    max_retries(0)
    settings.NOTIFIER_INTERNAL_ALLOWLIST = ["localhost"]
    cert_file, key_file = _self_signed(tmp_path, "other.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    with HttpRecorder("127.0.0.1", tls=context) as receiver:
        make_rule(plant_a)
        make_route(
            make_channel(plant_a, "webhook", {"url": f"https://localhost:{receiver.port}/hook", "secret": SECRET})
        )
        run(post_readings, press, (0, 99))
    assert receiver.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED and delivery.error.startswith("TLS to localhost failed")
