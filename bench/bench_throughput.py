"""Streaming throughput and memory: sttcli's core against a bare synchronous grpcio loop.

What is measured: how fast raw LPCM goes from a file into a StreamingRecognize
call, unpaced, to a loopback sink server that only counts the bytes, and the
client's peak RSS while doing it. Two clients stream the same file:

- core: sttcli.session.InputRecognizer (grpc.aio), once with session rotation
  effectively off (one stream, like the bare loop: the headline comparison),
  once with the default SessionPolicy (a new stream every ~9.5 MB, at a pause);
- bare: the vendor sample's shape, a sync stub fed by a generator of 4000-byte
  requests.

Why: the core's overhead per message (pause finding, positions, retry
bookkeeping, the async machinery) must not make it slower than the simplest
thing that works, and its memory must not grow with the input: a file is read
chunk by chunk, never held whole.

Each client run is a fresh child process, so its peak RSS (ru_maxrss) is its
own; the child times only the streaming, from the start of the call to the
final response. The sink runs in a process of its own, so client and server
each get a core. Each figure is the median of --repeat runs (peak RSS: the
largest). The sink's and the client's CPU time are reported too: a busy sink
caps both clients alike, and CPU per MB is less sensitive to a noisy machine.

    python bench/bench_throughput.py [--sizes 10,100] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1_000_000
CHUNK = 4000
RATE = 16000
CHILD_TIMEOUT = 600.0  # seconds one client run may take before it counts as hung

# Client variants: name -> what the table calls it.
VARIANTS = {
    "core": "sttcli core, 1 session",
    "bare": "bare sync grpcio loop",
    "core-rotating": "sttcli core, default rotation",
}


# -- the sink server (child process) ---------------------------------------


def serve_sink() -> None:
    """Count the audio bytes of each stream and answer with one final holding the count.

    The sink takes the requests as raw bytes and reads only each message's
    field tag and length, without parsing it: it is the same for both clients,
    and the cheaper it is, the more the figures say about the clients rather
    than about the sink. Prints the port on stdout, then serves until its
    stdin closes: the parent holds the other end, so the sink goes away with
    it, however it ends.
    """
    import grpc
    import grpc.aio

    from sttcli._proto import stt_service_pb2 as pb

    audio_tag = 0x12  # field 2 (audio_content), wire type 2 (length-delimited)

    def payload_length(message: bytes) -> int:
        if not message or message[0] != audio_tag:
            return 0  # the config
        length, shift, position = 0, 0, 1
        while True:
            byte = message[position]
            length |= (byte & 0x7F) << shift
            position += 1
            if byte < 0x80:
                return length
            shift += 7

    async def streaming_recognize(
        request_iterator: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        count = 0
        async for message in request_iterator:
            count += payload_length(message)
        alternative = pb.SpeechRecognitionAlternative(text=str(count))
        chunk = pb.SpeechRecognitionChunk(alternatives=[alternative], final=True)
        yield pb.StreamingRecognitionResponse(chunks=[chunk]).SerializeToString()

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "yandex.cloud.ai.stt.v2.SttService",
            {"StreamingRecognize": grpc.stream_stream_rpc_method_handler(streaming_recognize)},
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        await stdin_closed
        await server.stop(grace=None)

    asyncio.run(main())


# -- one client run (child process) ----------------------------------------


def stream_bare(path: str, endpoint: str) -> tuple[float, list[str]]:
    """The vendor sample's loop: a sync stub and a generator of requests."""
    import grpc

    from sttcli._proto import stt_service_pb2 as pb
    from sttcli._proto import stt_service_pb2_grpc as rpc

    def requests() -> Iterator[Any]:
        spec = pb.RecognitionSpec(
            audio_encoding=pb.RecognitionSpec.LINEAR16_PCM, sample_rate_hertz=RATE
        )
        yield pb.StreamingRecognitionRequest(config=pb.RecognitionConfig(specification=spec))
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                yield pb.StreamingRecognitionRequest(audio_content=chunk)

    finals: list[str] = []
    start = time.perf_counter()
    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc.SttServiceStub(channel)  # type: ignore[no-untyped-call]
        for response in stub.StreamingRecognize(requests()):
            finals += [c.alternatives[0].text for c in response.chunks if c.final]
        elapsed = time.perf_counter() - start
    return elapsed, finals


def stream_core(path: str, endpoint: str, *, rotate: bool) -> tuple[float, list[str]]:
    """sttcli's library API: one InputRecognizer over a file source."""
    from sttcli.audio.sources import open_source
    from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
    from sttcli.session import Connection, InputRecognizer

    policy = (
        SessionPolicy()
        if rotate
        else SessionPolicy(max_session_seconds=1e9, max_session_bytes=10**12)
    )

    async def run() -> tuple[float, list[str]]:
        connection = Connection(endpoint=endpoint, insecure=True)
        source = await open_source(path, rate=RATE)
        try:
            recognizer = InputRecognizer(
                source,
                settings=RecognitionSettings(),
                connection=connection,
                stream=StreamSettings(chunk_size=CHUNK),
                policy=policy,
            )
            start = time.perf_counter()
            await recognizer.run()
            elapsed = time.perf_counter() - start
            return elapsed, [u.text for u in recognizer.result().utterances]
        finally:
            source.close()
            await connection.close()

    return asyncio.run(run())


def run_client(variant: str, path: str, endpoint: str, profile: bool) -> None:
    """Stream once and print one JSON line: time, finals, peak RSS, CPU time."""
    # Imports happen here, before the clock starts, so only streaming is timed.
    import grpc  # noqa: F401

    import sttcli.session  # noqa: F401

    def stream() -> tuple[float, list[str]]:
        if variant == "bare":
            return stream_bare(path, endpoint)
        return stream_core(path, endpoint, rotate=variant == "core-rotating")

    before = resource.getrusage(resource.RUSAGE_SELF)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        elapsed, finals = profiler.runcall(stream)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    else:
        elapsed, finals = stream()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    report = {
        "seconds": elapsed,
        "finals": finals,
        "maxrss_kib": after.ru_maxrss,  # KiB on Linux
        "cpu_seconds": cpu,
    }
    print(json.dumps(report), flush=True)


# -- the parent ---------------------------------------------------------------


@dataclass
class Run:
    seconds: float  # the streaming, from starting the call to the final response
    maxrss_mib: float  # the client process's peak RSS
    client_cpu: float  # CPU seconds of the client during the streaming
    sink_cpu: float  # CPU seconds of the sink server meanwhile
    sessions: int


class SinkServer:
    """The sink in its own process; stopped on exit from the `with` block, error or not."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> SinkServer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--role", "sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the sink server did not start (printed {line!r})")
        self.port = int(line)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time of the sink so far (from /proc via psutil)."""
        import psutil  # type: ignore[import-untyped]

        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        assert process.stdin is not None
        process.stdin.close()  # the sink stops when its stdin closes
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def measure(sink: SinkServer, variant: str, path: Path, size: int, profile: bool = False) -> Run:
    """One client run in a fresh process; fails loudly if the sink did not get every byte."""
    command = [sys.executable, __file__, "--role", variant, "--path", str(path)]
    command += ["--endpoint", f"127.0.0.1:{sink.port}"]
    if profile:
        command.append("--profile")
    sink_before = sink.cpu_seconds()
    with subprocess.Popen(command, stdout=subprocess.PIPE) as child:
        try:
            out, _ = child.communicate(timeout=CHILD_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    sink_cpu = sink.cpu_seconds() - sink_before
    if child.returncode != 0:
        raise RuntimeError(f"{variant} client failed with exit code {child.returncode}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    counted = sum(int(text) for text in report["finals"])
    if counted != size:
        raise RuntimeError(f"{variant}: the sink counted {counted} bytes of {size}")
    return Run(
        seconds=report["seconds"],
        maxrss_mib=report["maxrss_kib"] / 1024,
        client_cpu=report["cpu_seconds"],
        sink_cpu=sink_cpu,
        sessions=len(report["finals"]),
    )


def make_input(directory: Path, size: int) -> Path:
    """Raw 16-bit LPCM silence (zeros) of exactly `size` bytes."""
    path = directory / f"zeros-{size}.raw"
    block = bytes(MB)
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            remaining -= file.write(block[: min(len(block), remaining)])
    return path


@dataclass
class Summary:
    """The runs of one client on one input size."""

    size: int
    runs: list[Run]

    def median(self, value: Callable[[Run], float]) -> float:
        return statistics.median(value(run) for run in self.runs)

    @property
    def seconds(self) -> float:
        return self.median(lambda run: run.seconds)

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds

    @property
    def client_cpu_ms_per_mb(self) -> float:
        return self.median(lambda run: run.client_cpu) * 1000 / (self.size / MB)

    @property
    def peak_rss_mib(self) -> float:
        return max(run.maxrss_mib for run in self.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100", help="input sizes in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then profile one core and one bare run of the first size (cProfile, on stderr)",
    )
    parser.add_argument("--role", default="parent", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "sink":
        serve_sink()
        return
    if args.role in VARIANTS:
        run_client(args.role, args.path, args.endpoint, args.profile)
        return

    # SIGTERM unwinds like Ctrl-C: the with-blocks stop the children, delete the inputs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = [int(s) * MB for s in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    results: dict[tuple[str, int], Summary] = {}
    with tempfile.TemporaryDirectory(prefix="sttcli-bench-") as tmp, SinkServer() as sink:
        for size in sizes:
            path = make_input(Path(tmp), size)
            for variant in VARIANTS:
                runs = [measure(sink, variant, path, size) for _ in range(args.repeat)]
                results[variant, size] = Summary(size, runs)
                speeds = ", ".join(f"{size / MB / run.seconds:.1f}" for run in runs)
                print(
                    f"# {VARIANTS[variant]}, {size // MB} MB: {speeds} MB/s",
                    file=sys.stderr,
                    flush=True,
                )
            path.unlink()
        if args.profile:
            path = make_input(Path(tmp), sizes[0])
            for variant in ("core", "bare"):
                print(f"\n# cProfile, {VARIANTS[variant]}, {sizes[0] // MB} MB", file=sys.stderr)
                measure(sink, variant, path, sizes[0], profile=True)
    print_table(results, sizes, args.repeat)
    print(
        f"load average (1 min) at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs (the bench itself adds ~1-2)"
    )


def print_table(results: dict[tuple[str, int], Summary], sizes: list[int], repeat: int) -> None:
    print(
        f"Median of {repeat} runs, {CHUNK}-byte chunks. Busy: CPU time over streaming time "
        "(100% = one core). Peak RSS: the largest of the runs."
    )
    print()
    print(
        "| input | client | MB/s | runs (MB/s) | vs bare | client CPU ms/MB "
        "| client busy | sink busy | peak RSS (MiB) | sessions |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        bare = results["bare", size]
        for variant in ("core", "bare", "core-rotating"):
            summary = results[variant, size]
            runs = ", ".join(f"{size / MB / run.seconds:.0f}" for run in summary.runs)
            client_busy = summary.median(lambda run: run.client_cpu / run.seconds)
            sink_busy = summary.median(lambda run: run.sink_cpu / run.seconds)
            print(
                f"| {size // MB} MB | {VARIANTS[variant]} | {summary.mb_per_s:.1f} | {runs} "
                f"| {bare.seconds / summary.seconds:.2f}x | {summary.client_cpu_ms_per_mb:.1f} "
                f"| {client_busy:.0%} | {sink_busy:.0%} | {summary.peak_rss_mib:.1f} "
                f"| {summary.runs[0].sessions} |"
            )
    print()
    speed = [results["bare", s].seconds / results["core", s].seconds for s in sizes]
    print(
        "core vs bare, throughput (target >= 1.2x): "
        + ", ".join(f"{s // MB} MB {r:.2f}x" for s, r in zip(sizes, speed, strict=True))
        + (" - met" if min(speed) >= 1.2 else " - MISSED")
    )
    cost = [
        results["bare", s].client_cpu_ms_per_mb / results["core", s].client_cpu_ms_per_mb
        for s in sizes
    ]
    print(
        "core vs bare, client CPU per MB (bare / core): "
        + ", ".join(f"{s // MB} MB {r:.2f}x" for s, r in zip(sizes, cost, strict=True))
    )
    if len(sizes) > 1:
        rss = [results["core", s].peak_rss_mib for s in sizes]
        print(
            "core peak RSS by input size (target: flat): "
            + ", ".join(f"{s // MB} MB {r:.1f} MiB" for s, r in zip(sizes, rss, strict=True))
            + f" (spread {max(rss) - min(rss):.1f} MiB)"
        )


if __name__ == "__main__":
    main()
