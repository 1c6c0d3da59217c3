"""Thin Celery entry points of device commands (the periodic one via ``manage.py sync_schedules``)."""

import logging

from celery import shared_task

from commands.exceptions import TransientDeliveryError
from commands.firmware import firmware_commands_sync
from commands.services import command_deliver, commands_expire

logger = logging.getLogger(__name__)


@shared_task(
    ignore_result=True, autoretry_for=(TransientDeliveryError,), retry_backoff=True, retry_jitter=True,
    max_retries=5, soft_time_limit=60, time_limit=90,
)  # fmt: skip
def deliver_command(command_id: int) -> str:
    """Offer one command to its device (WebSocket, MQTT). After the last retry the device still
    finds it by polling until it expires, so the failure is only logged."""
    try:
        return command_deliver(command_id=command_id)
    except TransientDeliveryError:
        if deliver_command.request.retries >= deliver_command.max_retries:
            logger.warning("command %s: MQTT push given up; the device can poll for it", command_id)
            return "given up"
        raise


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def expire_commands() -> dict:
    """Beat: mark open commands past their time-out ``expired`` and move firmware commands after
    their updates; returns how many of each."""
    return {"expired": commands_expire(), "firmware": firmware_commands_sync()}
