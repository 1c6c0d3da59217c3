"""Signals other apps listen to (STYLE.md §15: only at app boundaries).

Both are sent *after* the transaction that wrote the data has committed, so a receiver (the live
dashboard publisher, alert evaluation) never sees rows that could still roll back.
"""

from django.dispatch import Signal

# kwargs: items (list[devices.services.ingest.IngestItem]), received_at (datetime)
telemetry_ingested = Signal()

# kwargs: device_ids (list[int]), online (bool), at (datetime)
device_status_changed = Signal()
