"""A local fake Anthropic/OpenAI HTTP server for tests and offline demos, plus its command line.

Run ``python -m supervisor_lib.testing.fake_provider --port 8765 [--script rules.yaml]`` and point the SDKs at
the printed URL (Anthropic ``base_url=URL``, OpenAI ``base_url=URL/v1``).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from supervisor_lib.testing._core import DEFAULT_TEXT
from supervisor_lib.testing._rules import FAULTS, Rule, load_rules
from supervisor_lib.testing._server import CallRecord, FakeProviderServer

__all__ = ["DEFAULT_TEXT", "FAULTS", "CallRecord", "FakeProviderServer", "Rule", "load_rules", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve a scripted fake Anthropic/OpenAI API locally.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default: 8765)")
    parser.add_argument("--script", help="YAML or JSON file with a list of rules")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each answer waits (default: 0)")
    parser.add_argument("--strict", action="store_true", help="answer unmatched requests with HTTP 500")
    parser.add_argument("--batch-delay", type=float, default=0.2, help="seconds batches stay in progress")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake provider until SIGINT or SIGTERM."""
    args = _parser().parse_args(argv)
    server = FakeProviderServer(
        host=args.host, port=args.port, strict=args.strict, latency=args.latency, batch_delay=args.batch_delay
    )
    if args.script:
        server.add_rules(load_rules(args.script))
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with server:
        print(
            f"fake provider listening on {server.url} "
            f"(anthropic base_url={server.anthropic_base_url}, openai base_url={server.openai_base_url})",
            flush=True,
        )
        # A timed wait keeps the main thread responsive to signals.
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
