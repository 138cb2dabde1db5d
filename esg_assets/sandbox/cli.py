"""`esg-sandbox`: serve the sandbox on loopback and print the environment a job needs to use it."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading

from esg_assets.sandbox.config import SandboxConfig

READY_PREFIX = "# sandbox ready on "
MISSING_EXTRA = (
    "esg-sandbox needs the sandbox's extra dependencies (aiohttp), which a production install leaves out: "
    "pip install 'esg-assets[sandbox]' (or, in a checkout, pip install -e '.[sandbox]'; make install does it)"
)
EXIT_MISSING_EXTRA = 2


def _share(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    value = _count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (0..65535), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(
        prog="esg-sandbox",
        description="Serve the firm's auth, AMS and ESG contract on 127.0.0.1 with seeded synthetic data.",
    )
    parser.add_argument("--port", type=_port, default=defaults.port, help="TCP port; 0 picks a free one")
    parser.add_argument("--accounts", type=_count(0), default=defaults.accounts, help="active accounts")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every generated value")
    parser.add_argument(
        "--failure-rate",
        type=_share,
        default=defaults.failure_rate,
        help="share of accounts whose every rating request fails",
    )
    parser.add_argument(
        "--transient-error-rate",
        type=_share,
        default=defaults.transient_error_rate,
        help="share of (account, as_of) and AMS pages whose first request fails once",
    )
    parser.add_argument(
        "--partial-rate",
        type=_share,
        default=defaults.partial_rate,
        help="share of accounts with an incomplete (Partial or Unrated) rating",
    )
    parser.add_argument(
        "--daily-change-rate",
        type=_share,
        default=defaults.daily_change_rate,
        help="share of accounts whose rating changes from one day to the next",
    )
    parser.add_argument(
        "--hostile-rate",
        type=_share,
        default=defaults.hostile_rate,
        help="share of accounts listed with hostile input (names with lone surrogates or control "
        "characters, over-long names, numeric ids); above 0 also one expired cursor, one oversized and "
        "one trickled rating body per run",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        help="ESG requests per second allowed (default: unlimited)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=_count(1),
        default=None,
        help="ESG requests allowed in flight at once (default: unlimited)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=defaults.latency_ms,
        help="added latency of every AMS and ESG request",
    )
    parser.add_argument(
        "--token-ttl", type=_positive, default=defaults.token_ttl, help="seconds an access token stays valid"
    )
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument(
        "--no-ams-noise",
        dest="ams_noise",
        action="store_false",
        help="list exactly the active accounts: no repeats, inactive rows or bad ids",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a CA made at start; prints ESG_CA_BUNDLE, the CA's PEM file",
    )
    parser.add_argument(
        "--tls-dir",
        default=None,
        metavar="DIR",
        help="where --tls writes its PEM files (default: a temporary one, removed at exit)",
    )
    parser.add_argument(
        "--tls-expired",
        action="store_true",
        help="with --tls, serve a certificate that expired yesterday (clients refuse it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if (arguments.tls_dir or arguments.tls_expired) and not arguments.tls:
        parser.error("--tls-dir and --tls-expired need --tls")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = SandboxConfig(**vars(arguments))
    try:
        from esg_assets.sandbox.server import SandboxServer  # aiohttp: only with the extra
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "aiohttp":
            raise
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_MISSING_EXTRA

    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())

    with SandboxServer(config) as sandbox:
        for name, value in sandbox.job_environment().items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"{READY_PREFIX}{sandbox.base_url}", flush=True)
        # A timed wait keeps the main thread returning to Python, where the signal handlers run.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
