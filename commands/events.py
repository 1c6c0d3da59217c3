"""What devices and browsers receive about a command (one place for both shapes)."""

from live.bus import iso


def command_body(command) -> dict:
    """The command as a device receives it (MQTT, WebSocket ``{"command": ...}``, HTTP poll):
    CONTRACT.md's ``{"id", "name", "params", "expires_at"}`` plus ``"type": "command"``, which
    tells it apart from the firmware frames (``"type": "firmware_update"``)."""
    return {
        "type": "command",
        "id": command.pk,
        "name": command.name,
        "params": command.params,
        "expires_at": iso(command.expires_at),
    }


def command_data(command) -> dict:
    """The command as the management API and the machine page show it."""
    by = command.created_by
    return {
        "id": command.pk,
        "device": command.device_id,
        "name": command.name,
        "params": command.params,
        "state": command.state,
        "result": command.result,
        "created_by": by.get_username() if by is not None else None,
        "created_at": iso(command.created_at),
        "expires_at": iso(command.expires_at),
        "delivered_at": iso(command.delivered_at),
        "finished_at": iso(command.finished_at),
    }


def command_event(command) -> dict:
    """The live bus event (kind ``command``) of a command's new state, for its device's followers."""
    return {"kind": "command", "device_id": command.device_id, "command": command_data(command)}
