"""Reads of commands for a user (scoped like every other read: the caller has the device already)."""

from commands.events import command_data
from commands.models import Command
from commands.services import definitions_allowed

HISTORY_SHOWN = 20


def command_card(device, user) -> dict:
    """What the machine page's Commands card shows: the catalogue entries ``user`` may send to
    ``device`` (with their parameter schemas) and its latest commands (newest first)."""
    allowed = definitions_allowed(device, user)
    recent = Command.objects.filter(device=device).select_related("created_by").order_by("-created_at", "-pk")
    history = [command_data(c) for c in recent[:HISTORY_SHOWN]]
    return {
        "catalogue": [
            {
                "name": d.name,
                "label": d.label or d.name.replace("_", " ").capitalize(),
                "description": d.description,
                "schema": d.params_schema,
                "timeout": d.default_timeout,
            }
            for d in allowed
        ],
        "history": history,
        "device": device.pk,
    }
