"""Sending commands through the management API: who may, what the catalogue allows, what is stored."""

from datetime import timedelta

from commands.models import Command, CommandDefinition
from conftest import assert_status
from devices.tests.factories import make_device

URL = "/api/v1/devices/{}/commands/"


def send(client, device, body):
    return client.post(URL.format(device.pk), body, format="json")


def test_operator_sends_a_command_and_it_waits_pending(client_for, operator, press):
    response = assert_status(send(client_for(operator), press, {"name": "set_speed", "params": {"rpm": 1200}}), 201)
    body = response.json()
    assert body["state"] == "pending" and body["name"] == "set_speed" and body["params"] == {"rpm": 1200}
    assert body["created_by"] == "operator" and body["device_uid"] == "press-01"
    command = Command.objects.get(pk=body["id"])
    assert (command.expires_at - command.created_at).total_seconds() == 300  # the catalogue's default
    assert list(command.events.values_list("state", "via", "by__username")) == [("pending", "api", "operator")]


def test_permission_trio_outsider_404_viewer_403_operator_201(client_for, outsider, viewer, operator, press):
    body = {"name": "set_speed", "params": {"rpm": 10}}
    assert_status(send(client_for(outsider), press, body), 404)
    refused = assert_status(send(client_for(viewer), press, body), 403)
    assert "operator role" in refused.json()["detail"]
    assert_status(send(client_for(operator), press, body), 201)
    assert Command.objects.count() == 1


def test_another_plants_device_is_404(client_for, operator, foreign):
    assert_status(send(client_for(operator), foreign, {"name": "set_speed", "params": {"rpm": 10}}), 404)
    assert not Command.objects.exists()


def test_refuses_a_name_not_in_the_catalogue_and_lists_the_allowed_ones(client_for, operator, press):
    response = assert_status(send(client_for(operator), press, {"name": "self_destruct"}), 400)
    body = response.json()
    assert "'self_destruct' is not a command of model 'HP-400'" in body["detail"]
    assert body["errors"]["allowed"] == ["reboot", "reset_counter", "set_speed"]
    assert not Command.objects.exists()


def test_a_command_of_another_model_is_not_offered(client_for, operator, plant_a, press):
    other = make_device(press.line, "robot-01", model="RB-1")
    response = assert_status(send(client_for(operator), other, {"name": "set_speed", "params": {"rpm": 1}}), 400)
    assert response.json()["errors"]["allowed"] == ["reboot", "reset_counter"]


def test_refuses_params_that_fail_the_schema_with_the_schema_error(client_for, operator, press):
    client = client_for(operator)
    cases = [
        ({"rpm": 5000}, "params.rpm: 5000 is greater than the maximum of 3000"),
        ({}, "'rpm' is a required property"),
        ({"rpm": 10, "turbo": True}, "Additional properties are not allowed ('turbo' was unexpected)"),
        ({"rpm": "fast"}, "params.rpm: 'fast' is not of type 'integer'"),
    ]
    for params, message in cases:
        body = assert_status(send(client, press, {"name": "set_speed", "params": params}), 400).json()
        assert message in body["detail"], body
        assert body["errors"]["schema"]["properties"]["rpm"]["maximum"] == 3000
    body = assert_status(send(client, press, {"name": "set_speed", "params": [1]}), 400).json()
    assert body["detail"] == "params must be a JSON object."
    assert not Command.objects.exists()


def test_a_command_needing_the_admin_role_is_403_for_an_operator(client_for, operator, plant_admin, press):
    refused = assert_status(send(client_for(operator), press, {"name": "reboot"}), 403)
    assert "'reboot' needs the admin role" in refused.json()["detail"]
    assert_status(send(client_for(plant_admin), press, {"name": "reboot"}), 201)


def test_refuses_a_time_out_out_of_range_and_unknown_fields(client_for, operator, press, settings):
    settings.COMMAND_MAX_TIMEOUT = 600
    client = client_for(operator)
    body = assert_status(send(client, press, {"name": "reboot_x", "timeout": 0}), 400).json()
    assert "not a command" in body["detail"]
    body = assert_status(send(client, press, {"name": "reset_counter", "timeout": 601}), 400).json()
    assert body["detail"] == "timeout must be between 1 and 600 seconds."
    body = assert_status(send(client, press, {"name": "reset_counter", "parms": {}}), 400).json()
    assert "parms" in body["errors"]
    sent = assert_status(send(client, press, {"name": "reset_counter", "timeout": 30}), 201).json()
    command = Command.objects.get(pk=sent["id"])
    assert command.expires_at - command.created_at == timedelta(seconds=30)


def test_history_lists_the_devices_commands_newest_first(
    client_for, viewer, operator, press, django_assert_max_num_queries
):
    for rpm in (1, 2, 3):
        assert_status(send(client_for(operator), press, {"name": "set_speed", "params": {"rpm": rpm}}), 201)
    client = client_for(viewer)
    with django_assert_max_num_queries(12):
        page = assert_status(client.get(URL.format(press.pk)), 200).json()
    assert [c["params"]["rpm"] for c in page["results"]] == [3, 2, 1]


def test_commands_list_is_scoped_and_detail_has_the_history(client_for, viewer, outsider, operator, press, foreign):
    mine = assert_status(send(client_for(operator), press, {"name": "set_speed", "params": {"rpm": 7}}), 201).json()
    Command.objects.create(
        device=foreign, name="set_speed", params={}, created_at=foreign.created_at, expires_at=foreign.created_at
    )
    listed = assert_status(client_for(viewer).get("/api/v1/commands/"), 200).json()
    assert [c["id"] for c in listed["results"]] == [mine["id"]]
    assert assert_status(client_for(outsider).get("/api/v1/commands/"), 200).json()["results"] == []
    assert_status(client_for(outsider).get(f"/api/v1/commands/{mine['id']}/"), 404)
    detail = assert_status(client_for(viewer).get(f"/api/v1/commands/{mine['id']}/"), 200).json()
    assert [(e["state"], e["via"], e["by"]) for e in detail["events"]] == [("pending", "api", "operator")]


def test_catalogue_of_a_device_shows_what_the_caller_may_send(client_for, viewer, operator, plant_admin, press):
    def names(user):
        response = assert_status(client_for(user).get(f"/api/v1/devices/{press.pk}/command-catalogue/"), 200)
        return [d["name"] for d in response.json()]

    assert names(viewer) == []
    assert names(operator) == ["reset_counter", "set_speed"]
    assert names(plant_admin) == ["reboot", "reset_counter", "set_speed"]


def test_only_staff_change_the_catalogue_and_the_schema_itself_is_checked(client_for, plant_admin, superuser, db):
    body = {"model": "HP-400", "name": "open_valve", "params_schema": {"type": "object"}, "role": "operator"}
    refused = assert_status(client_for(plant_admin).post("/api/v1/command-definitions/", body, format="json"), 403)
    assert "Only staff" in refused.json()["detail"]
    bad = {**body, "params_schema": {"type": "object", "properties": {"x": {"type": "flux"}}}}
    response = assert_status(client_for(superuser).post("/api/v1/command-definitions/", bad, format="json"), 400)
    assert "Not a valid JSON schema" in str(response.json())
    reserved = {**body, "name": "firmware_update"}
    response = assert_status(client_for(superuser).post("/api/v1/command-definitions/", reserved, format="json"), 400)
    assert "sent by firmware rollouts" in str(response.json())
    assert_status(client_for(superuser).post("/api/v1/command-definitions/", body, format="json"), 201)
    assert CommandDefinition.objects.filter(name="open_valve").exists()


def test_disabled_definitions_are_not_offered(client_for, operator, press, catalogue):
    CommandDefinition.objects.filter(name="set_speed").update(enabled=False)
    response = assert_status(send(client_for(operator), press, {"name": "set_speed", "params": {"rpm": 1}}), 400)
    assert "set_speed" not in response.json()["errors"]["allowed"]
