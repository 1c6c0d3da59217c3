"""Waiting for something another thread or process makes true: poll it, with a bound.

Tests wait for the event they need (a row committed, a port open, a worker answering), never for
a fixed time: a fixed sleep is too short on a loaded machine and wasted on a fast one.
"""

import time


def poll(predicate, timeout: float, *, interval: float = 0.05, ignore: tuple = ()):
    """Call ``predicate`` until it returns something truthy and return that, or ``None`` after
    ``timeout`` seconds. Exceptions of the types in ``ignore`` count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition", *, interval: float = 0.05, ignore=()):
    """Like ``poll``, but fails naming ``what`` when ``timeout`` seconds pass first."""
    value = poll(predicate, timeout, interval=interval, ignore=ignore)
    if not value:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return value
