"""Command line: ``python -m edge run --config edge.yaml``, ``check`` (validate only) and ``demo``."""

import argparse
import asyncio
import logging
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
        from edge.gateway import Gateway

        asyncio.run(Gateway(config).run_forever())
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
