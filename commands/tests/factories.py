"""Test factories of the command catalogue (plain functions, as in devices/tests/factories.py)."""

from commands.models import CommandDefinition

SET_SPEED_SCHEMA = {
    "type": "object",
    "properties": {
        "rpm": {"type": "integer", "minimum": 0, "maximum": 3000, "title": "Speed (rpm)"},
        "ramp": {"type": "boolean"},
    },
    "required": ["rpm"],
    "additionalProperties": False,
}


def make_definition(name: str = "set_speed", model: str = "HP-400", **fields) -> CommandDefinition:
    definition = CommandDefinition(
        name=name, model=model, params_schema=fields.pop("params_schema", SET_SPEED_SCHEMA), **fields
    )
    definition.full_clean()
    definition.save()
    return definition


def make_catalogue() -> dict[str, CommandDefinition]:
    """``set_speed`` (operators, HP-400), ``reboot`` (admins, every model), ``reset_counter`` (operators)."""
    return {
        "set_speed": make_definition(),
        "reboot": make_definition("reboot", model="", role="admin", params_schema={"type": "object"}),
        "reset_counter": make_definition(
            "reset_counter",
            model="",
            params_schema={"type": "object", "properties": {"counter": {"enum": ["total", "good"]}}},
        ),
    }
