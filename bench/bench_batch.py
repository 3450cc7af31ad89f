"""Batch speed-up: 32 inputs of 10 s against a server that takes audio at 10x real time.

What is measured: the wall time of `sttcli recognize -f json` over 32 inputs
of 10 s of 16 kHz LPCM, at --jobs 1 and --jobs 8, and the speed-up. The
server stands in for a real recognizer: it consumes each stream's audio at a
fixed pace (10 times real time, so each input takes 1 s of its time) and
answers with one final at the end. Why: a batch waits on the service, not on
the client's CPU, so parallel streams should scale almost linearly; target
at least 6x at --jobs 8 on a 2-core machine.

    python bench/bench_batch.py [--inputs 32] [--seconds 10] [--pace 10] [--jobs 1,8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = 16000


def serve(pace: float) -> None:
    """The paced server (child process): prints its port, serves until stdin closes."""
    from concurrent import futures

    import grpc

    from sttcli._proto import stt_service_pb2 as pb
    from sttcli._proto import stt_service_pb2_grpc as rpc

    class PacedServicer(rpc.SttServiceServicer):
        def StreamingRecognize(self, request_iterator, context):  # type: ignore[no-untyped-def]  # noqa: N802
            audio = 0
            started = time.monotonic()
            for request in request_iterator:
                audio += len(request.audio_content)
                # Consume no faster than `pace` times real time.
                due = started + audio / (2 * RATE) / pace
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            alternative = pb.SpeechRecognitionAlternative(text=f"{audio} bytes")
            chunk = pb.SpeechRecognitionChunk(
                alternatives=[alternative], final=True, end_of_utterance=True
            )
            yield pb.StreamingRecognitionResponse(chunks=[chunk])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    rpc.add_SttServiceServicer_to_server(PacedServicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # until the parent goes away
    server.stop(grace=None)


def run_batch(port: int, inputs: list[Path], jobs: int) -> float:
    command = [
        str(Path(sys.executable).parent / "sttcli"),
        "recognize",
        "--endpoint",
        f"127.0.0.1:{port}",
        "--insecure",
        "-r",
        str(RATE),
        "-f",
        "json",
        "-q",
        "-j",
        str(jobs),
        *map(str, inputs),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sttcli failed ({done.returncode}): {done.stderr.strip()}")
    results = done.stdout.splitlines()
    expected = f'"text":"{RATE * 2 * int(inputs[0].stat().st_size / (RATE * 2))} bytes"'
    if len(results) != len(inputs) or not all(expected in line for line in results):
        raise SystemExit("unexpected results: " + done.stdout[:300])
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pace", type=float, default=10.0, help="server speed, x real time")
    parser.add_argument("--jobs", default="1,8")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.pace)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--pace", str(args.pace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as directory:
            inputs = []
            for n in range(args.inputs):
                path = Path(directory) / f"call{n:02d}.pcm"
                path.write_bytes(os.urandom(16) * int(args.seconds * RATE * 2 / 16))
                inputs.append(path)
            walls = {}
            for jobs in (int(j) for j in args.jobs.split(",")):
                walls[jobs] = run_batch(port, inputs, jobs)
        audio = args.inputs * args.seconds
        print(f"load average: {os.getloadavg()[0]:.2f}")
        print(f"{args.inputs} inputs x {args.seconds:g} s, server at {args.pace:g}x real time")
        print("| jobs | wall (s) | audio s per wall s | speed-up |")
        print("|---:|---:|---:|---:|")
        base = walls[min(walls)]
        for jobs, wall in walls.items():
            print(f"| {jobs} | {wall:.2f} | {audio / wall:.1f} | {base / wall:.2f}x |")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
