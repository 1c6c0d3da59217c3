"""The uplink against a local HTTP receiver that answers like the platform's telemetry endpoint."""

import asyncio
import contextlib

import pytest
import pytest_asyncio

from edge.health import Health
from edge.store import Store
from edge.tests.conftest import Receiver, cancel, gateway_config, wait_until
from edge.uplink import Uplink

TOKENS = {"press-01": "press-token", "packer-01": "packer-token"}


def message(number: int) -> dict:
    return {"ts": f"2026-12-06T05:00:{number:02d}.000000Z", "values": {"count_total": number}}


@contextlib.asynccontextmanager
async def running_uplink(tmp_path, receiver, batch_size=500):
    config = gateway_config(
        tmp_path,
        receiver.url,
        [{"name": "plc", "type": "modbus", "host": "127.0.0.1"}],
        [{"uid": "press-01", "token": "press-token", "tags": [{"connector": "plc", "metric": "m", "address": 0}]}],
        uplink={"batch_size": batch_size},
    )
    store, health = Store(config.queue_path, max_rows=1000, max_age=1e12), Health()
    uplink = Uplink(config, store, health, TOKENS)
    task = asyncio.create_task(uplink.run())
    try:
        yield store, health, uplink
    finally:
        await cancel(task)
        store.close()


@pytest.mark.asyncio
async def test_sends_each_devices_messages_in_order_with_its_own_token_and_empties_the_queue(tmp_path, receiver):
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(1)), ("packer-01", message(2)), ("press-01", message(3))])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
    assert receiver.of("press-01") == [message(1), message(3)]
    assert receiver.of("packer-01") == [message(2)]
    assert health.errors_total == 0


@pytest.mark.asyncio
async def test_keeps_only_the_invalid_message_aside_when_the_platform_answers_400(tmp_path, receiver):
    error = {"index": 1, "field": "values.count_total", "message": "A piece counter is a whole number >= 0."}
    receiver.script = [(400, {"errors": [error]})]
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(n)) for n in (1, 2, 3)])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
        dead = store.dead_letters()
    assert receiver.of("press-01") == [message(1), message(3)]
    assert [(d["message"], d["status"], d["reason"]) for d in dead] == [
        (message(2), 400, "values.count_total: A piece counter is a whole number >= 0.")
    ]
    assert health.last_error == "rejected"


@pytest.mark.asyncio
async def test_sets_the_whole_batch_aside_when_a_400_names_no_message(tmp_path, receiver):
    receiver.script = [(400, {"detail": "Malformed JSON."})]
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(n)) for n in (1, 2)])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
        assert [d["reason"] for d in store.dead_letters()] == ['{"detail": "Malformed JSON."}'] * 2
    assert receiver.messages == []


@pytest.mark.asyncio
async def test_holds_a_device_whose_token_is_refused_while_others_go_on(tmp_path, receiver):
    receiver.script = [(401, {"detail": "Unknown device token."})]
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(1)), ("packer-01", message(2))])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
    assert [uid for uid, _ in receiver.messages] == ["packer-01", "press-01"]  # press waited for its retry
    assert receiver.of("press-01") == [message(1)]
    assert health.last_error == "auth" and health.errors_total == 1


@pytest.mark.asyncio
async def test_retries_with_backoff_when_the_platform_is_unavailable_and_sends_each_message_once(tmp_path, receiver):
    receiver.script = [503, 503, 502]
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(n)) for n in (1, 2)])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
    assert [status for _, _, status in receiver.requests] == [503, 503, 502, 202]
    assert receiver.of("press-01") == [message(1), message(2)]
    assert health.errors_total == 3 and health.last_error == "uplink"


@pytest.mark.asyncio
async def test_halves_the_batch_when_the_platform_says_it_is_too_large(tmp_path, receiver):
    receiver.script = [413]
    async with running_uplink(tmp_path, receiver, batch_size=4) as (store, _health, uplink):
        store.enqueue([("press-01", message(n)) for n in range(1, 6)])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
    assert [(size, status) for _, size, status in receiver.requests] == [(4, 413), (2, 202), (2, 202), (1, 202)]
    assert receiver.of("press-01") == [message(n) for n in range(1, 6)]


@pytest.mark.asyncio
async def test_waits_and_retries_when_rate_limited(tmp_path, receiver):
    receiver.script = [429]
    async with running_uplink(tmp_path, receiver) as (store, health, uplink):
        store.enqueue([("press-01", message(1))])
        uplink.wake()
        await wait_until(lambda: store.depth == 0, 10, "an empty queue")
    assert [status for _, _, status in receiver.requests] == [429, 202]
    assert receiver.of("press-01") == [message(1)]


@pytest_asyncio.fixture
async def https_receiver(tmp_path):
    """The receiver over HTTPS, its certificate for "localhost" from a local CA (``make certs``)."""
    import ssl

    from factory.certs import make_certs

    paths = make_certs(tmp_path / "certs", ["localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths["cert"], paths["key"])
    server = await Receiver(ssl_context=context).start()
    server.ca_file = paths["ca"]
    yield server
    await server.stop()


@pytest.mark.asyncio
async def test_sends_over_https_only_to_a_platform_whose_certificate_verifies(tmp_path, https_receiver):
    devices = [{"uid": "press-01", "token": "press-token", "tags": [{"connector": "plc", "metric": "m", "address": 0}]}]
    connectors = [{"name": "plc", "type": "modbus", "host": "127.0.0.1"}]
    for trusted in (False, True):
        uplink_section = {"ca_file": str(https_receiver.ca_file)} if trusted else {}
        (tmp_path / str(trusted)).mkdir()
        config = gateway_config(tmp_path / str(trusted), https_receiver.url, connectors, devices, uplink=uplink_section)
        store, health = Store(config.queue_path, max_rows=1000, max_age=1e12), Health()
        uplink = Uplink(config, store, health, TOKENS)
        store.enqueue([("press-01", message(1))])
        task = asyncio.create_task(uplink.run())
        try:
            if trusted:
                await wait_until(lambda s=store: s.depth == 0, 10, "the message delivered over HTTPS")
            else:  # the system's CAs do not know the local CA: nothing is sent, the message waits
                await wait_until(lambda h=health: h.errors_total > 0, 10, "a certificate error")
                assert store.depth == 1
        finally:
            await cancel(task)
            store.close()
    assert https_receiver.of("press-01") == [message(1)]
