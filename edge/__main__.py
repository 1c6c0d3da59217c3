"""Command line: ``python -m edge run --config edge.yaml``, ``check`` (validate only) and ``demo``."""

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys

from edge.config import load
from edge.fields import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge", description="Edge gateway: OPC UA and Modbus TCP to the platform."
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Run the gateway.")
    run.add_argument("--config", required=True, help="The YAML configuration file.")
    check = commands.add_parser("check", help="Validate a configuration and exit (0: usable).")
    check.add_argument("--config", required=True)
    demo = commands.add_parser(
        "demo", help="Simulated OPC UA and Modbus machines behind a gateway (see edge/README.md)."
    )
    demo.add_argument("--platform", default="http://127.0.0.1:8000", help="The platform's URL (default: make run's).")
    demo.add_argument("--username", default="admin", help="A platform user allowed to add devices (default: admin).")
    demo.add_argument("--password", help="Its password (default: from var/demo-credentials.json, as make run seeds).")
    demo.add_argument("--plant", default="Demo Plant", help="The plant the two demo machines join.")
    demo.add_argument("--workdir", default="var/edge-demo", help="Where the demo keeps its config, tokens and queue.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "asyncua", "pymodbus"):  # a line per request or session is not news
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "demo":
            from edge.demo import demo_run

            asyncio.run(demo_run(args))
            return 0
        config = load(args.config)
        if args.command == "check":
            print(f"{args.config}: OK ({len(config.connectors)} connector(s), {len(config.tags)} tag(s)).")
            return 0
        asyncio.run(_run(config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _run(config) -> None:
    """The gateway until Ctrl-C or SIGTERM (a container's stop): both end it the same way, and what
    is queued stays on disk for the next start."""
    from edge.gateway import Gateway

    try:
        gateway = Gateway(config)
    except sqlite3.Error as exc:
        raise OSError(f"the queue file {config.queue_path} cannot be opened ({exc}); check queue.path") from exc
    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await gateway.run_forever()
    except asyncio.CancelledError:
        logging.getLogger("edge").info("Stopped; %d message(s) stay queued.", gateway.store.depth)


if __name__ == "__main__":
    sys.exit(main())
