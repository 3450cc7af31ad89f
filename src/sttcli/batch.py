"""Running many inputs: in parallel within the service's limits, each failing alone.

The order of output never depends on the order of completion: renderers get
each input's place (`InputRef.index`) and the JSON renderer writes results in
the order the inputs were given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sttcli.errors import ExitCode, Interrupted, SttError
from sttcli.render import InputRef, Renderer
from sttcli.results import ErrorInfo, InputResult
from sttcli.session import InputRecognizer

MAX_JOBS = 60  # SpeechKit's limit of concurrent streams

OpenRecognizer = Callable[[InputRef], Awaitable[InputRecognizer]]


@dataclass
class BatchOutcome:
    results: list[InputResult]
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        for result in self.results:  # command-line order
            if result.error is not None:
                return result.error.exit_code
        return int(ExitCode.OK)


async def recognize_one(
    ref: InputRef, open_recognizer: OpenRecognizer, renderer: Renderer
) -> InputResult:
    """Run one input to its end; its failure is its result, not an exception."""
    recognizer: InputRecognizer | None = None
    try:
        recognizer = await open_recognizer(ref)
        await recognizer.run()
        result = recognizer.result()
    except SttError as error:
        info = ErrorInfo.from_error(error)
        result = recognizer.result(info) if recognizer else InputResult(ref.name, error=info)
    except asyncio.CancelledError:
        info = ErrorInfo.from_error(Interrupted())
        result = recognizer.result(info) if recognizer else InputResult(ref.name, error=info)
        renderer.done(ref, result)
        raise
    finally:
        if recognizer is not None:
            recognizer.source.close()
    renderer.done(ref, result)
    return result


async def run_batch(
    refs: Sequence[InputRef],
    open_recognizer: OpenRecognizer,
    renderer: Renderer,
    *,
    jobs: int = 1,
    fail_fast: bool = False,
) -> BatchOutcome:
    results: dict[int, InputResult] = {}
    semaphore = asyncio.Semaphore(max(1, min(jobs, MAX_JOBS)))
    failed = asyncio.Event()

    async def worker(ref: InputRef) -> None:
        async with semaphore:
            if fail_fast and failed.is_set():
                return
            result = await recognize_one(ref, open_recognizer, renderer)
            results[ref.index] = result
            if result.error is not None:
                failed.set()

    tasks = [asyncio.ensure_future(worker(ref)) for ref in refs]
    interrupted = False
    try:
        if fail_fast:
            waiter = asyncio.ensure_future(failed.wait())
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending and not failed.is_set():
                done, pending = await asyncio.wait(
                    pending | {waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(waiter)
            waiter.cancel()
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        else:
            await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        interrupted = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ordered = [results[ref.index] for ref in refs if ref.index in results]
    return BatchOutcome(ordered, interrupted)
