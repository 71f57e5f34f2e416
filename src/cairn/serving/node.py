"""A prediction node: one process that loads one model directory and answers frames.

Started by `NodeProcess` as `python -m cairn.serving.node ...`. It reports on the
`--ready-fd` pipe one JSON line — `{"ok": true, "framework", "warmup"}` once it listens, or
`{"ok": false, "error"}` if the model did not load — and exits as soon as its stdin closes,
which happens when the server process ends for any reason, so no node outlives its server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from cairn.serving.batching import BatchAnswerer
from cairn.serving.framing import FrameReader


class NodeProtocol(asyncio.Protocol):
    """One server connection; frames that arrive together are answered together."""

    def __init__(self, answerer: BatchAnswerer) -> None:
        self.answerer = answerer
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        frames = self.reader.feed(data)
        if frames and self.transport is not None:
            self.transport.write(self.answerer.answer(frames))


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    ready = os.fdopen(args.ready_fd, "wb", buffering=0)
    _exit_when_parent_goes()
    try:
        from cairn.serving.loaders import load_predictor

        predictor = load_predictor(
            Path(args.model_dir), args.framework or None, args.prediction_class or None
        )
        warmup = predictor.warmup_instances()
    except Exception as error:  # noqa: BLE001 - report every load failure to the server
        _report(ready, {"ok": False, "error": _load_failure_text(error)})
        sys.exit(1)
    _run_event_loop(_serve(args.socket, BatchAnswerer(predictor), ready, predictor, warmup))


async def _serve(
    socket_path: str, answerer: BatchAnswerer, ready: Any, predictor: Any, warmup: Any
) -> None:
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: NodeProtocol(answerer), path=socket_path)
    _report(ready, {"ok": True, "framework": predictor.framework, "warmup": warmup})
    async with server:
        await server.serve_forever()


def _run_event_loop(coroutine: Any) -> None:
    try:
        import uvloop

        uvloop.run(coroutine)
    except ImportError:
        asyncio.run(coroutine)


def _report(ready: Any, message: dict[str, Any]) -> None:
    try:
        ready.write(orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        ready.close()
    except OSError:
        os._exit(1)  # the server is gone


def _load_failure_text(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    from cairn.serving.errors import ModelLoadError

    if isinstance(error, ModelLoadError) or type(error).__name__ == "ApiError":
        return text
    return f"Failed to load model: {type(error).__name__}: {text}"


def _exit_when_parent_goes() -> None:
    """Block-read stdin on a daemon thread; EOF means the server process has ended."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cairn.serving.node", description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--framework", default="")
    parser.add_argument("--prediction-class", default="")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
