"""Domain exceptions of alarm notification (STYLE.md §3, §6)."""


class DeliveryError(Exception):
    """A notification could not be delivered.

    ``permanent=True`` means retrying cannot help (bad address, rejected credentials, 4xx): the
    channel is marked failing and the plant admins are told. Otherwise the task retries.
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class TransientDeliveryError(DeliveryError):
    """A delivery failure worth retrying with backoff (timeout, connection refused, 5xx, 429)."""

    def __init__(self, message: str):
        super().__init__(message, permanent=False)
