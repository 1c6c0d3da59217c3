"""Domain errors of the firmware app."""


class UpdateReportError(Exception):
    """A device's status report that cannot be applied (wrong update, wrong order). Nothing changed."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


class TransientNotifyError(Exception):
    """The broker or channel layer was unreachable; the notification task retries."""
