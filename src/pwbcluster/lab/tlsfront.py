"""Stand-in for the directory's TLS front (an AWS network load balancer's TLS listener).

The services stage puts an internal NLB before the domain controllers: a TLS listener on
636 (policy ELBSecurityPolicy-TLS13-1-2-2021-06: TLS 1.2 and 1.3 only) with the
certificate it imports into ACM, forwarding the plain stream to the DCs' 389. This
process does the same on one address: it terminates TLS with that very certificate and
key (the ones the stage imported), refuses anything below TLS 1.2, and copies bytes to
the DC. It is not an NLB: no health checks, no second DC, no cross-zone balancing.

Run: python -m pwbcluster.lab.tlsfront LISTEN_ADDR:PORT TARGET_ADDR:PORT CERT KEY
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys

NAME = "pwblab-nlb-tls-standin"


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: str, target: str, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    target_host, target_port = _split(target)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    host, port = _split(listen)
    server = await asyncio.start_server(handle, host, port, ssl=context)
    print(f"{NAME}: TLS on {listen} -> {target} (not an AWS load balancer)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(serve(*argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
