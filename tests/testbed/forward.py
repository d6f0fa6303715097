"""A TCP forwarder: ``python -m tests.testbed.forward LISTEN_HOST:PORT=TARGET_HOST:PORT ...``.

The node (:mod:`tests.testbed.node`) runs one, so that Pods reach the bed's loopback-only services
through the pod network's addresses: bytes are passed as they are (TLS included), both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence

__all__ = ["main", "parse_route"]

_CHUNK = 65536


def parse_route(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """``'10.0.0.1:443=127.0.0.1:6443'`` -> ``(('10.0.0.1', 443), ('127.0.0.1', 6443))``."""
    listen, target = text.split("=", 1)

    def address(part: str) -> tuple[str, int]:
        host, port = part.rsplit(":", 1)
        return host, int(port)

    return address(listen), address(target)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _serve_one(
    target: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*target)
    except OSError:
        writer.close()
        return
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        for w in (writer, up_writer):
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()


async def _serve(routes: Sequence[str]) -> None:
    servers = []
    for text in routes:
        (host, port), target = parse_route(text)

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int] = target
        ) -> None:
            await _serve_one(target, reader, writer)

        servers.append(await asyncio.start_server(handle, host, port, reuse_address=True))
    print(f"forwarding {', '.join(routes)}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: Sequence[str] | None = None) -> int:
    routes = list(sys.argv[1:] if argv is None else argv)
    if not routes:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(_serve(routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
