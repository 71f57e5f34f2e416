"""A prediction node: one process that loads one model directory and answers frames.

Started by `NodeProcess` as `python -m cairn.serving.node ...`. It reports on the
`--ready-fd` pipe one JSON line — `{"ok": true, "framework", "warmup"}` once it listens, or
`{"ok": false, "error"}` if the model did not load — and exits as soon as its stdin closes,
which happens when the server process ends for any reason, so no node outlives its server.

Frames are answered on the event loop: whatever arrived while the model ran is read as one
chunk and answered together. With `--threads N` model calls run on N threads instead while
the loop keeps reading: frames that arrive while every thread is busy wait and go together to
the next free one, and other cores work on other batches while numpy, XGBoost or TensorFlow
run without the GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from cairn.serving.batching import BatchAnswerer
from cairn.serving.framing import Frame, FrameReader

# On the event loop by default: measured on the 2-core dev machine (A/B in one run, CPU time
# per request of server and node), 1 or 2 model threads cost the node 11-60 % more CPU per
# request (hand-offs, GIL, smaller batches) and answered fewer requests per second in 5 of 6
# cells (e.g. TensorFlow at 100 rows: 5.7k/s inline, 3.9k/s with 1 thread, 3.5k/s with 2),
# because the server and the clients keep the other core busy. Threads pay off only where
# cores are idle while a node is saturated.
DEFAULT_THREADS = 0


class Dispatcher:
    """Hands waiting frames to free model threads; `threads=0` answers on the event loop."""

    def __init__(self, answerer: BatchAnswerer, threads: int) -> None:
        self.answerer = answerer
        self.loop = asyncio.get_running_loop()
        self.free = threads
        self.pool = ThreadPoolExecutor(threads, "model") if threads else None
        # Connections with frames waiting, in arrival order (usually one: the server's).
        self.waiting: dict[NodeProtocol, list[Frame]] = {}

    def submit(self, connection: NodeProtocol, frames: list[Frame]) -> None:
        if self.pool is None:
            connection.send(self.answerer.answer(frames))
            return
        self.waiting.setdefault(connection, []).extend(frames)
        self._start_free_threads()

    def _start_free_threads(self) -> None:
        while self.free and self.waiting:
            connection = next(iter(self.waiting))
            frames = self.waiting.pop(connection)
            self.free -= 1
            assert self.pool is not None
            future = self.pool.submit(self.answerer.answer, frames)
            future.add_done_callback(partial(self._done_in_thread, connection))

    def _done_in_thread(self, connection: NodeProtocol, done: Future[bytes]) -> None:
        self.loop.call_soon_threadsafe(self._finished, connection, done)

    def _finished(self, connection: NodeProtocol, done: Future[bytes]) -> None:
        self.free += 1
        self._start_free_threads()
        if done.exception() is None:
            connection.send(done.result())
        else:  # answer() turns request failures into frames; this is a bug: the server's
            connection.close()  # requests in flight get 503 at once, not a 60 s timeout

    def forget(self, connection: NodeProtocol) -> None:
        self.waiting.pop(connection, None)


class NodeProtocol(asyncio.Protocol):
    """One server connection; frames that arrive together are answered together."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.dispatcher.forget(self)

    def data_received(self, data: bytes) -> None:
        frames = self.reader.feed(data)
        if frames:
            self.dispatcher.submit(self, frames)

    def send(self, answers: bytes) -> None:
        if self.transport is not None:
            self.transport.write(answers)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


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
    answerer = BatchAnswerer(predictor)
    # A custom routine (no framework) is user code that may not expect concurrent calls.
    threads = args.threads if predictor.framework else min(args.threads, 1)
    _run_event_loop(_serve(args.socket, answerer, threads, ready, predictor, warmup))


async def _serve(
    socket_path: str,
    answerer: BatchAnswerer,
    threads: int,
    ready: Any,
    predictor: Any,
    warmup: Any,
) -> None:
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    loop = asyncio.get_running_loop()
    dispatcher = Dispatcher(answerer, threads)
    server = await loop.create_unix_server(lambda: NodeProtocol(dispatcher), path=socket_path)
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
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="threads running model calls (0: on the event loop)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
