"""``OtcClient.start_otc_details`` against a bare aiohttp loop, on the same local server.

    python benchmarks/bench_client.py [--quick] [--speedups auto|off] [--server aiohttp|raw]

The server runs in its own process on the other core; the client side runs 16
concurrent workers. Rounds alternate bare, client, bare, client ... in one run,
so both see the same machine; the table gives the medians of the pairs'
requests/s and client CPU per request, and the median of their ratios (client
/ bare; target >= 0.90 at K=2 changing) with its range.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CLIENT_CPU,
    QUICK_SECONDS,
    TOKEN,
    Measured,
    add_quick_option,
    add_server_option,
    add_speedups_option,
    bare_worker,
    machine,
    pairs_row,
    pin,
    run_workers,
    server,
    table,
    use_speedups,
)

from flipkart_otc import OtcClient, RetryPolicy


async def compare(origin: str, rounds: int, seconds: float) -> list[tuple[Measured, Measured]]:
    """``rounds`` pairs of phases, bare then client, on warm connections."""
    pairs = []
    bare_one = bare_worker(origin)
    async with OtcClient(TOKEN, base_url=origin + "/sellers", retry=RetryPolicy()) as client:

        async def client_one() -> None:
            await client.start_otc_details("LOC1")

        await run_workers(bare_one, 0.2)  # warm both up: connections, caches
        await run_workers(client_one, 0.2)
        for _ in range(rounds):
            bare, ours = Measured(), Measured()
            for measured, one in ((bare, bare_one), (ours, client_one)):
                with measured.phase():
                    measured.requests += await run_workers(one, seconds)
            pairs.append((bare, ours))
    await bare_one.close()  # type: ignore[attr-defined]
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_quick_option(parser)
    add_speedups_option(parser)
    add_server_option(parser)
    args = parser.parse_args()
    # Many short pairs, and the median of their ratios: a burst of noise from the shared
    # machine then spoils one pair, not the figure.
    rounds, seconds = (1, QUICK_SECONDS) if args.quick else (5, 1.5)
    pin(CLIENT_CPU)
    speedups = use_speedups(args.speedups == "auto")
    rows = []
    for k, mode in ((2, "changing"), (2, "static"), (20, "changing")):
        with server(k, mode, kind=args.server) as origin:
            pairs = asyncio.run(compare(origin, rounds, seconds))
        rows.append(pairs_row(f"K={k} {mode}", pairs))
    print(
        f"bench_client on {machine(speedups)}; {args.server} server; 16 workers; {rounds} "
        f"pairs of {seconds:g}s phases (bare, client), medians"
    )
    header = [
        "answer",
        "bare req/s",
        "client req/s",
        "bare us/req",
        "client us/req",
        "ratio (median)",
        "range",
    ]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
