class TransientReportError(Exception):
    """Sending a report failed in a way worth retrying (SMTP down, connection refused)."""
