"""The device's side over HTTP: poll for commands, answer them; expiry; states and their history."""

from datetime import timedelta

from django.utils import timezone

from commands.models import Command
from commands.services import command_send, commands_expire
from commands.tasks import expire_commands
from conftest import assert_status
from devices.tests.factories import make_device, make_token

POLL = "/api/v1/device/commands/"


def result_url(command) -> str:
    return f"/api/v1/device/commands/{command.pk}/result/"


def device_get(client, token, url=POLL):
    return client.get(url, HTTP_AUTHORIZATION=f"Device {token}")


def device_post(client, token, url, body):
    return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {token}")


def sent(press, operator, name="set_speed", params=None, timeout=None) -> Command:
    return command_send(device=press, name=name, params=params or {"rpm": 900}, by=operator, timeout=timeout)


def test_poll_lists_open_commands_and_marks_them_delivered(client, press, press_token, operator):
    command = sent(press, operator)
    body = assert_status(device_get(client, press_token), 200).json()
    assert body == {
        "commands": [
            {
                "type": "command",
                "id": command.pk,
                "name": "set_speed",
                "params": {"rpm": 900},
                "expires_at": command.expires_at.isoformat().replace("+00:00", "Z"),
            }
        ]
    }
    command.refresh_from_db()
    assert command.state == "delivered" and command.delivered_at is not None
    # Listed again until answered (a device that lost it can still answer), delivered only once.
    assert [c["id"] for c in assert_status(device_get(client, press_token), 200).json()["commands"]] == [command.pk]
    assert list(command.events.values_list("state", "via")) == [("pending", "api"), ("delivered", "http")]


def test_device_answers_over_http_and_the_history_shows_every_state(client, press, press_token, operator):
    command = sent(press, operator)
    device_get(client, press_token)
    body = {"status": "succeeded", "result": {"rpm": 900, "took_ms": 40}}
    answer = assert_status(device_post(client, press_token, result_url(command), body), 200).json()
    assert answer == {"id": command.pk, "state": "succeeded"}
    command.refresh_from_db()
    assert command.state == "succeeded" and command.result == {"rpm": 900, "took_ms": 40}
    assert command.finished_at is not None
    assert list(command.events.values_list("state", "via")) == [
        ("pending", "api"),
        ("delivered", "http"),
        ("succeeded", "http"),
    ]
    assert assert_status(device_get(client, press_token), 200).json() == {"commands": []}


def test_a_failed_result_is_kept_with_its_details(client, press, press_token, operator):
    command = sent(press, operator)
    body = {"status": "failed", "result": {"error": "spindle locked"}}
    assert_status(device_post(client, press_token, result_url(command), body), 200)
    command.refresh_from_db()
    # Answered without a poll (it came over MQTT): delivered at the same moment.
    assert command.state == "failed" and command.delivered_at == command.finished_at
    assert command.result == {"error": "spindle locked"}


def test_the_same_result_twice_is_fine_and_a_different_one_is_409(client, press, press_token, operator):
    command = sent(press, operator)
    body = {"status": "succeeded", "result": {"ok": True}}
    assert_status(device_post(client, press_token, result_url(command), body), 200)
    assert_status(device_post(client, press_token, result_url(command), body), 200)  # a redelivery
    refused = assert_status(device_post(client, press_token, result_url(command), {"status": "failed"}), 409)
    assert "already has a result (succeeded)" in refused.json()["detail"]
    assert command.events.filter(state="succeeded").count() == 1


def test_a_device_cannot_answer_another_devices_command(client, press, operator):
    command = sent(press, operator)
    other = make_device(press.line, "press-02")
    token = make_token(other)[1]
    refused = assert_status(device_post(client, token, result_url(command), {"status": "succeeded"}), 404)
    assert refused.json()["detail"] == f"This device has no command {command.pk}."
    assert assert_status(device_get(client, token), 200).json() == {"commands": []}
    command.refresh_from_db()
    assert command.state == "pending"


def test_bad_results_are_400_and_change_nothing(client, press, press_token, operator):
    command = sent(press, operator)
    url = result_url(command)
    cases = [
        ({"status": "done"}, "status must be 'succeeded' or 'failed'."),
        ({"status": "succeeded", "result": [1, 2]}, "result must be a JSON object."),
        ([], 'Send a JSON object: {"status": "succeeded" | "failed", "result": {...}}.'),
    ]
    for body, message in cases:
        assert assert_status(device_post(client, press_token, url, body), 400).json()["detail"] == message
    response = client.post(url, "status=x", content_type="text/plain", HTTP_AUTHORIZATION=f"Device {press_token}")
    assert_status(response, 415)
    assert_status(device_post(client, "nope", url, {"status": "succeeded"}), 401)
    huge = f"/api/v1/device/commands/{10**30}/result/"
    assert_status(device_post(client, press_token, huge, {"status": "succeeded"}), 404)
    assert_status(client.get(url, HTTP_AUTHORIZATION=f"Device {press_token}"), 405)
    command.refresh_from_db()
    assert command.state == "pending"


def test_expiry_marks_open_commands_once_and_a_late_result_is_409(client, press, press_token, operator):
    command = sent(press, operator, timeout=60)
    answered = sent(press, operator, timeout=60)
    device_get(client, press_token)  # both delivered
    assert_status(device_post(client, press_token, result_url(answered), {"status": "succeeded"}), 200)
    later = timezone.now() + timedelta(seconds=61)
    assert commands_expire(now=later) == 1
    assert commands_expire(now=later) == 0  # idempotent
    command.refresh_from_db()
    answered.refresh_from_db()
    assert (command.state, answered.state) == ("expired", "succeeded")
    assert list(command.events.values_list("state", "via")) == [
        ("pending", "api"),
        ("delivered", "http"),
        ("expired", "expiry"),
    ]
    refused = assert_status(device_post(client, press_token, result_url(command), {"status": "succeeded"}), 409)
    assert "expired at" in refused.json()["detail"] and "its result is refused" in refused.json()["detail"]
    command.refresh_from_db()
    assert command.state == "expired" and command.result is None


def test_a_result_after_expires_at_is_refused_before_the_task_ran(client, press, press_token, operator):
    command = sent(press, operator, timeout=1)
    Command.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = assert_status(device_post(client, press_token, result_url(command), {"status": "succeeded"}), 409)
    assert "expired at" in refused.json()["detail"]
    command.refresh_from_db()
    assert command.state == "expired"
    assert assert_status(device_get(client, press_token), 200).json() == {"commands": []}


def test_the_expiry_task_runs_the_service(press, operator):
    command = sent(press, operator, timeout=1)
    Command.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_commands.apply().get() == {"expired": 1, "firmware": 0}
    command.refresh_from_db()
    assert command.state == "expired"
