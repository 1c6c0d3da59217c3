"""Domain errors of the commands app."""


class CommandError(Exception):
    """A command that cannot be sent or a result that cannot be recorded; nothing changed.

    ``status`` is the HTTP status the API answers with (400 bad input, 403 role too low, 404 not
    this device's command, 409 already finished or expired); ``errors`` names fields when useful.
    """

    def __init__(self, message: str, status: int = 400, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors


class TransientDeliveryError(Exception):
    """The MQTT broker was unreachable; the delivery task retries (devices can still poll)."""
