"""The gateway's own health, sent as telemetry of the gateway device.

The platform stores numbers only, so the last error is sent as a code (``ERROR_CODES``) with a
running count; its text goes to the gateway's log. Connector states are ``connector_<name>_up``
(1 connected, 0 not), so a dashboard or an alert rule can watch a PLC link like any metric.
"""

import logging
import time

logger = logging.getLogger("edge")

# What kind of error happened last: a number, because telemetry values are numbers.
ERROR_CODES = {
    "none": 0,
    "plc": 1,  # a connector lost or could not reach its PLC
    "uplink": 2,  # the platform could not be reached or answered 5xx
    "auth": 3,  # the platform refused a device token (401/403)
    "rejected": 4,  # the platform refused messages as invalid (400): they are in the dead-letter table
    "mapping": 5,  # a PLC value did not fit its tag's mapping (e.g. an unknown state number)
    "queue_full": 6,  # the queue was full and dropped its oldest messages
}


class Health:
    """Counters and states the connectors and the uplink report into; ``values()`` is one health message."""

    def __init__(self):
        self.connectors: dict[str, bool] = {}
        self.errors_total = 0
        self.last_error = "none"
        self.last_error_text = ""
        self.last_error_at: float | None = None

    def connector(self, name: str, up: bool) -> None:
        if self.connectors.get(name, False) != up:  # the first "not yet connected" is no news
            logger.info("Connector %s %s.", name, "connected" if up else "disconnected")
        self.connectors[name] = up

    def error(self, kind: str, text: str) -> None:
        """Record an error of ``kind`` (a key of ``ERROR_CODES``) and log its text."""
        self.errors_total += 1
        self.last_error, self.last_error_text, self.last_error_at = kind, text, time.time()
        logger.warning("%s error: %s", kind, text)

    def values(self, queue_depth: int, counters: dict[str, int]) -> dict[str, int]:
        values = {
            "queue_depth": queue_depth,
            "queue_dropped_full": counters["dropped_full"],
            "queue_dropped_expired": counters["dropped_expired"],
            "dead_letters": counters["dead_letters"],
            "errors_total": self.errors_total,
            "last_error_code": ERROR_CODES[self.last_error],
        }
        for name, up in sorted(self.connectors.items()):
            values[f"connector_{name}_up"] = int(up)
        return values
