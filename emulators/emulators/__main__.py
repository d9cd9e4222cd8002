"""``python -m emulators {kaon,kahuna,kissmetrics} --port P [knobs]``.

Prints one JSON line ``{"service": ..., "url": ...}`` on stdout once listening
(``--port 0`` picks a free port), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys

from emulators.clock import Clock, parse_iso8601
from emulators.core import serve
from emulators.faults import Faults

SERVICES = {
    "kaon": "emulators.kaon",
    "kahuna": "emulators.kahuna",
    "kissmetrics": "emulators.kissmetrics",
}


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic data")
    parser.add_argument(
        "--now", default=None, help="freeze the clock at this ISO 8601 UTC instant (default: follow real time)"
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500/503")
    faults.add_argument("--error-statuses", default="500,503", help="statuses used for --error-rate")
    faults.add_argument("--rate-limit-rate", type=float, default=0.0, help="share of requests answered 429")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on 429s")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped unanswered")
    faults.add_argument("--slow-body-ms", type=float, default=0.0, help="pause in the middle of each body")
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault dice")


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The CLI: one sub-command per service, each with the common and its own options.

    With ``selected`` only that service's module is imported, so starting one service
    never depends on another's code; without it every service's options are added.
    """
    parser = argparse.ArgumentParser(
        prog="python -m emulators", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="service", required=True)
    for name, module_name in SERVICES.items():
        service_parser = sub.add_parser(name, help=f"the {name} emulator")
        if selected in (None, name):
            _add_common_arguments(service_parser)
            importlib.import_module(module_name).add_arguments(service_parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    argv = sys.argv[1:] if argv is None else argv
    selected = next((arg for arg in argv if arg in SERVICES), None)
    options = build_parser(selected).parse_args(argv)
    module = importlib.import_module(SERVICES[options.service])
    clock = Clock(parse_iso8601(options.now) if options.now else None)
    faults = Faults(
        latency_ms=options.latency_ms,
        error_rate=options.error_rate,
        error_statuses=[int(s) for s in options.error_statuses.split(",") if s],
        rate_limit_rate=options.rate_limit_rate,
        retry_after_seconds=options.retry_after,
        drop_rate=options.drop_rate,
        slow_body_ms=options.slow_body_ms,
        seed=options.fault_seed,
    )
    try:
        emulator = module.create_emulator(options, clock, faults)
    except ValueError as exc:  # a knob out of range: one line, no traceback
        sys.exit(f"python -m emulators {options.service}: {exc}")

    def announce(url: str) -> None:
        print(json.dumps({"service": options.service, "url": url}), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(emulator, options.host, options.port, announce))
    sys.exit(0)


if __name__ == "__main__":
    main()
