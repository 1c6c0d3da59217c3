class DeviceAuthError(Exception):
    """A device credential was refused. ``status`` is 401 (unknown) or 403 (revoked, disabled)."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.message = message
        self.status = status
