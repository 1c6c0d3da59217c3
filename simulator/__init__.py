"""A believable factory for demos, load and end-to-end tests (``python manage.py simulate``).

- ``machine``: the behaviour of machines, sensors and gateways (pure Python, seeded, no I/O).
- ``fleet``: which registry devices are simulated (and the extra ``sim-NNN`` machines).
- ``tokens``: the simulator's device tokens, kept in ``VAR_DIR/simulator-tokens.json``.
- ``transports``: HTTP, MQTT and WebSocket senders speaking CONTRACT.md.
- ``runner``: the asyncio loop that ties them together, with backoff, summaries and a clean stop.
"""
