"""Benchmark: what one rating request costs the job's process, layer by layer, against an unthrottled sandbox.

Starts `esg-sandbox` (no limits) in its own process, then sends the same requests from this process on N
threads through each layer and prints requests/s and CPU microseconds per request (this process's CPU time,
all threads, over the requests: unlike requests/s it hardly depends on what else the machine is doing):

- requests: `requests.Session.get` as the AMS and token clients send (trust_env off);
- transport: `RatingTransport.get`, the ratings hot path on urllib3's pools;
- client: `EsgClient.fetch_rating`, i.e. the transport plus pacing, retries, 401 handling and Decimal JSON.

    .venv/bin/python bench/client_layers.py --requests 3000 --threads 32
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import requests
from run_bench import REPO, start_sandbox  # bench/ is on the path when this script runs

from esg_assets.lib.firm_api.esg import EsgClient
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets.lib.firm_api.rating_transport import RatingTransport

AS_OF = date(2026, 11, 20)


def measure(name: str, send, count: int, threads: int) -> None:
    ids = [f"ACC-{n % 1000 + 1:07d}" for n in range(count)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, ids[: threads * 4]))  # connections opened, token fetched
        wall, cpu = time.perf_counter(), time.process_time()
        list(pool.map(send, ids))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:<10}{count / wall:>10.1f}{cpu / count * 1e6:>14.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    arguments = parser.parse_args()

    log = REPO / "var" / "bench" / "client-layers-sandbox.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sandbox, settings = start_sandbox(["--accounts", "1000", "--latency-ms", str(arguments.latency_ms)], log)
    try:
        session = build_session(pool_size=arguments.threads, ca_bundle=None)
        tokens = TokenProvider(session, settings["ESG_AUTH_TOKEN_URL"], settings["ESG_CLIENT_ID"],
                               settings["ESG_CLIENT_SECRET"], timeout=10)  # fmt: skip
        transport = RatingTransport(pool_size=arguments.threads, ca_bundle=None)
        base = settings["ESG_API_BASE_URL"]
        client = EsgClient(transport, base, tokens,
                           RequestGate(rate_per_second=1e6, max_in_flight=arguments.threads),
                           timeout=10)  # fmt: skip

        def url(account_id: str) -> str:
            return f"{base}/v1/accounts/{account_id}/esg-rating?as_of={AS_OF.isoformat()}"

        def with_requests(account_id: str) -> None:
            headers = {"Authorization": f"Bearer {tokens.token()}", "Accept": "application/json"}
            session.get(url(account_id), headers=headers, timeout=10).raise_for_status()

        def with_transport(account_id: str) -> None:
            headers = {"Authorization": f"Bearer {tokens.token()}", "Accept": "application/json"}
            assert transport.get(url(account_id), headers, 10).status_code == 200

        def with_client(account_id: str) -> None:
            assert client.fetch_rating(account_id, AS_OF).obtained

        print(f"{'layer':<10}{'req/s':>10}{'CPU µs/req':>14}")
        measure("requests", with_requests, arguments.requests, arguments.threads)
        measure("transport", with_transport, arguments.requests, arguments.threads)
        measure("client", with_client, arguments.requests, arguments.threads)
    except requests.RequestException as error:
        print(f"request failed: {error}", file=sys.stderr)
        return 1
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
