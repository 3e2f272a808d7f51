"""``OtcClient.start_otc_details`` against a bare aiohttp loop, on the same local server.

    python benchmarks/bench_client.py [--quick] [--speedups auto|off]

The server runs in its own process on the other core; the client side runs 16
concurrent workers. Rounds alternate bare, client, bare, client ... in one run,
so both see the same machine; the table gives requests/s, client CPU per
request and the ratio (client / bare; target >= 0.90 at K=2 changing).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CLIENT_CPU,
    TOKEN,
    Measured,
    add_speedups_option,
    bare_worker,
    machine,
    pin,
    run_workers,
    server,
    table,
    use_speedups,
)

from flipkart_otc import OtcClient, RetryPolicy


async def compare(origin: str, rounds: int, seconds: float) -> tuple[Measured, Measured]:
    bare, ours = Measured(), Measured()
    bare_one = bare_worker(origin)
    async with OtcClient(TOKEN, base_url=origin + "/sellers", retry=RetryPolicy()) as client:

        async def client_one() -> None:
            await client.start_otc_details("LOC1")

        await run_workers(bare_one, 0.2)  # warm both up: connections, caches
        await run_workers(client_one, 0.2)
        for _ in range(rounds):
            for measured, one in ((bare, bare_one), (ours, client_one)):
                with measured.phase():
                    measured.requests += await run_workers(one, seconds)
    await bare_one.close()  # type: ignore[attr-defined]
    return bare, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    add_speedups_option(parser)
    args = parser.parse_args()
    rounds, seconds = (1, 0.3) if args.quick else (4, 2.5)
    pin(CLIENT_CPU)
    speedups = use_speedups(args.speedups == "auto")
    rows = []
    for k, mode in ((2, "changing"), (2, "static"), (20, "changing")):
        with server(k, mode) as origin:
            bare, ours = asyncio.run(compare(origin, rounds, seconds))
        rows.append(
            [
                f"K={k} {mode}",
                f"{bare.rate:8.0f}",
                f"{ours.rate:8.0f}",
                f"{bare.cpu_us:6.1f}",
                f"{ours.cpu_us:6.1f}",
                f"{ours.rate / bare.rate:5.2f}",
            ]
        )
    print(f"bench_client on {machine(speedups)}; 16 workers; {rounds} rounds of {seconds:g}s each")
    header = ["answer", "bare req/s", "client req/s", "bare us/req", "client us/req", "ratio"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
