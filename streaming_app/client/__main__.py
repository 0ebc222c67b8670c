"""``python -m streaming_app.client URL METHOD [name=value ...]``: call a method, print JSON lines.

Each item is printed as one JSON line as it arrives, then ``{"end": result}``.
A failure prints ``{"error": {...}}`` on stderr and exits with status 1.
Values are JSON when they parse as JSON (``n=5``, ``tags=["a"]``), strings
otherwise (``payload=hi``). With ``--stdin``, each line of standard input is
sent as one item (client-stream and bidirectional methods).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..exceptions import StreamError
from .client import StreamClient


def parse_argument(text: str) -> tuple[str, Any]:
    """``name=value``: the value as JSON when it parses, else the string itself."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"arguments are name=value, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"headers are NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m streaming_app.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="WebSocket URL, e.g. ws://127.0.0.1:8000/ws/")
    parser.add_argument("method", help="<namespace>.<method>, e.g. interop.count")
    parser.add_argument("arguments", nargs="*", type=parse_argument, help="name=value arguments")
    parser.add_argument("--token", help="DRF token, sent as Authorization: Bearer")
    parser.add_argument("--ticket", help="a ticket from POST <prefix>/_ticket")
    parser.add_argument("--session", help="a Django session key, sent as the sessionid cookie")
    parser.add_argument(
        "--header", action="append", default=[], type=parse_header, metavar="NAME:VALUE",
        help="connection metadata, sent as a handshake header (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="deadline in seconds")
    parser.add_argument("--window", type=int, default=64, help="credit window (default 64)")
    parser.add_argument("--stdin", action="store_true", help="send each JSON line of stdin as an item")
    return parser


async def run(options: argparse.Namespace) -> int:
    args = dict(options.arguments)
    client = StreamClient(
        options.url, token=options.token, ticket=options.ticket, session=options.session,
        metadata=dict(options.header), window=options.window, reconnect=False,
    )
    async with client:
        call = await client.open(options.method, args, timeout=options.timeout)
        if options.stdin:
            for number, line in enumerate(sys.stdin, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    await call.cancel()
                    print(json.dumps({"error": {"code": "invalid_argument", "message": f"stdin line {number} is not JSON: {exc}"}}), file=sys.stderr)
                    return 2
                await call.send(item)
            await call.end()
        async for item in call:
            print(json.dumps(item, ensure_ascii=False), flush=True)
        print(json.dumps({"end": await call.result()}, ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status is 0, 1 (the call failed) or 2 (bad usage)."""
    options = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(options))
    except StreamError as exc:
        print(json.dumps({"error": {"code": str(exc.code), "message": exc.message, "details": exc.details}}), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
