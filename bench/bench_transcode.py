"""What decoding costs: an MP3 against the same audio as 16 kHz WAV, and Opus on the wire.

Four measurements, side by side in one run:

1. Streaming, unpaced, to a loopback sink (bench_throughput's: it counts the
   audio bytes of each stream and answers one final per stream): HOURS of
   44.1 kHz stereo MP3 against the same audio as a 16 kHz mono WAV, with the
   default session policy (rotation at pauses every ~290 s) for both. Wall
   time of the streaming and the client's peak RSS, each client a fresh
   process.
2. The same MP3 with --send-as oggopus: bytes on the wire against LPCM.
3. Decoding and resampling alone (PyAV, no network), in times real time,
   on one core (the process's CPU time).
4. Accuracy through `sttcli serve` (its default engine) on the reference
   corpus's English utterances: each WAV sent as LPCM, and encoded by the
   client as Ogg Opus; WER of each.

The input is samples/speech.wav repeated with pauses between the repeats, so
that rotation finds pauses as it would in speech.

    python bench/bench_transcode.py [--hours 1] [--repeat 3] [--corpus DIR] [--skip-wer]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "speech.wav"
CHILD_TIMEOUT = 7200.0
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_throughput import SinkServer  # noqa: E402

# -- inputs ---------------------------------------------------------------------


def speech_loop(seconds: float) -> bytes:
    """One repeat: the sample, then a second of silence (16 kHz mono PCM)."""
    with wave.open(str(SAMPLE)) as sample:
        pcm = sample.readframes(sample.getnframes())
    return pcm + bytes(32000)


def make_inputs(directory: Path, hours: float) -> tuple[Path, Path, float]:
    """The WAV (16 kHz mono) and the MP3 (44.1 kHz stereo, 128 kbit/s) of the same audio."""
    import av

    unit = speech_loop(0)
    repeats = int(hours * 3600 * 32000 / len(unit))
    seconds = repeats * len(unit) / 32000
    wav_path = directory / f"speech-{hours:g}h.16k.wav"
    mp3_path = directory / f"speech-{hours:g}h.mp3"
    if wav_path.exists() and mp3_path.exists():
        return wav_path, mp3_path, seconds
    with wave.open(str(wav_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for _ in range(repeats):
            out.writeframes(unit)
    container = av.open(str(mp3_path), "w", format="mp3")
    stream = container.add_stream("libmp3lame", rate=44100, layout="stereo")
    stream.codec_context.bit_rate = 128000
    resampler = av.AudioResampler(format="s16p", layout="stereo", rate=44100)
    pts = 0
    for _ in range(repeats):
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(unit) // 2)
        frame.planes[0].update(unit)
        frame.sample_rate = 16000
        frame.pts = pts
        pts += len(unit) // 2
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                container.mux(packet)
    for converted in resampler.resample(None):
        for packet in stream.encode(converted):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return wav_path, mp3_path, seconds


# -- one client run (child process) -----------------------------------------------


def run_client(path: str, endpoint: str, send_as: str) -> None:
    """Stream one file with the default session policy; print time, sessions, bytes, RSS."""
    import sttcli.session  # noqa: F401 - imported before the clock starts
    from sttcli.audio.sources import Conversion, open_source
    from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
    from sttcli.session import Connection, InputRecognizer

    policy = SessionPolicy()

    async def run() -> dict[str, object]:
        connection = Connection(endpoint=endpoint, insecure=True)
        conversion = Conversion(
            session_seconds=policy.max_session_seconds, session_bytes=policy.max_session_bytes
        )
        start = time.perf_counter()
        source = await open_source(path, conversion=conversion)
        try:
            recognizer = InputRecognizer(
                source,
                settings=RecognitionSettings(),
                connection=connection,
                stream=StreamSettings(send_as=send_as),
                policy=policy,
            )
            await recognizer.run()
            elapsed = time.perf_counter() - start
            result = recognizer.result()
            return {
                "seconds": elapsed,
                "sessions": result.sessions,
                "wire_bytes": sum(int(u.text) for u in result.utterances),
                "audio_s": result.audio_duration_s,
            }
        finally:
            source.close()
            await connection.close()

    watcher = MemoryWatcher()
    report = asyncio.run(run())
    watcher.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["maxrss_mib"] = peak_rss_kib() / 1024
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    # A file is decoded in a child process: its CPU and memory count too.
    report["decoder_cpu_s"] = children.ru_utime + children.ru_stime
    report["decoder_maxrss_mib"] = watcher.child_peak_kib / 1024
    report["total_maxrss_mib"] = report["maxrss_mib"] + report["decoder_maxrss_mib"]
    report["sampled_rss_sum_mib"] = watcher.rss_sum_kib / 1024
    report["sampled_pss_sum_mib"] = watcher.pss_sum_kib / 1024
    print(json.dumps(report), flush=True)


class MemoryWatcher:
    """Memory of this process and its children (the decoder), sampled while they run.

    Two measures of the pair: the highest sum of RSS at one moment, which
    counts the pages both processes map from one file (the interpreter, libc)
    twice, and the highest sum of PSS, which shares such pages out and so
    counts each page once. The children's own peak RSS (VmHWM) too.
    """

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.child_peak_kib = 0
        self.rss_sum_kib = 0
        self.pss_sum_kib = 0
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stopped.wait(self._interval):
            rss = pss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                    rss += info.rss // 1024
                    pss += info.pss // 1024
                    if process.pid != me.pid:
                        with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
                            for line in status:
                                if line.startswith("VmHWM:"):
                                    peak = int(line.split()[1])
                                    self.child_peak_kib = max(self.child_peak_kib, peak)
                except (OSError, psutil.Error):
                    pass  # it ended meanwhile
            self.rss_sum_kib = max(self.rss_sum_kib, rss)
            self.pss_sum_kib = max(self.pss_sum_kib, pss)


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM).

    Not ru_maxrss: Linux keeps that across exec, so a child would report its
    parent's peak when the parent was bigger (it is, after encoding the MP3).
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(sink: SinkServer, path: Path, send_as: str = "lpcm") -> dict[str, float]:
    command = [sys.executable, __file__, "--role", "client", "--path", str(path)]
    command += ["--endpoint", f"127.0.0.1:{sink.port}", "--send-as", send_as]
    out = subprocess.run(command, capture_output=True, check=True, timeout=CHILD_TIMEOUT)
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs (so not always from the same run)."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


# -- decoding alone ---------------------------------------------------------------


def decode_speed(path: Path) -> tuple[float, float]:
    """(seconds of audio, CPU seconds) for sttcli's decoding pass to 16 kHz mono, in-process.

    The pass the decoder process runs, with nothing sending: what decoding
    and resampling alone cost.
    """
    from sttcli.audio.decode import DecodeRequest, decode

    pcm_bytes = 0

    def count(item: object) -> bool:
        nonlocal pcm_bytes
        if isinstance(item, bytes):
            pcm_bytes += len(item)
        return True

    before = resource.getrusage(resource.RUSAGE_SELF)
    decode(path.name, str(path), DecodeRequest("MP3", "mp3", send_rate=16000), count)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return pcm_bytes / 32000, cpu


# -- accuracy through `sttcli serve` ----------------------------------------------


def corpus_wer(corpus: Path) -> dict[str, dict[str, float]]:
    from bench_engine import load_corpus, normalize, score

    utterances = load_corpus(corpus)
    server = subprocess.Popen(
        [sys.executable, "-m", "sttcli", "serve", "--port", "0", "--workers", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    while line and not line.startswith("listening on"):  # the engine's line comes first
        line = server.stderr.readline()
    address = line.split()[-1]
    results: dict[str, dict[str, float]] = {}
    try:
        for send_as in ("lpcm", "oggopus"):
            hypotheses = []
            wire = 0
            for utterance in utterances:
                path = utterance.path("wav")
                command = [sys.executable, "-m", "sttcli", "recognize", "--endpoint", address]
                command += ["--insecure", "--raw-results", "-f", "json", "--send-as", send_as]
                command.append(str(path))
                out = subprocess.run(command, capture_output=True, text=True, timeout=600)
                hypotheses.append(normalize(json.loads(out.stdout)["text"]))
                wire += wire_bytes(path, send_as)
            found = score([u.reference for u in utterances], hypotheses)
            results[send_as] = {"wer": found.wer, "wire_bytes": wire}
            print(f"  {send_as}: WER {found.wer:.1%}, {wire} bytes", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def wire_bytes(path: Path, send_as: str) -> int:
    if send_as == "lpcm":
        return path.stat().st_size - 44
    from sttcli.audio.encode import OggOpusEncoder

    encoder = OggOpusEncoder(16000)
    total = 0
    with wave.open(str(path)) as audio:
        while block := audio.readframes(2000):
            total += len(encoder.encode(block))
    return total + len(encoder.finish())


# -- the parent -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", default="parent")
    parser.add_argument("--path")
    parser.add_argument("--endpoint")
    parser.add_argument("--send-as", default="lpcm")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=3, help="streaming runs of each input")
    parser.add_argument("--skip-wer", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    args = parser.parse_args()
    if args.role == "sink":
        from bench_throughput import serve_sink

        serve_sink()
        return
    if args.role == "client":
        run_client(args.path, args.endpoint, args.send_as)
        return
    print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()}", file=sys.stderr)
    figures: dict[str, object] = {}
    if not args.skip_stream:
        started = time.perf_counter()
        wav_path, mp3_path, seconds = make_inputs(args.workdir, args.hours)
        print(f"inputs: {seconds:.0f} s ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        audio_s, cpu = decode_speed(mp3_path)
        figures["decode"] = {"audio_s": audio_s, "cpu_s": cpu, "x_real_time": audio_s / cpu}
        print(f"decode+resample: {audio_s / cpu:.0f}x real time on one core", file=sys.stderr)
        runs: dict[str, list[dict[str, float]]] = {"wav": [], "mp3": [], "mp3-oggopus": []}
        with SinkServer() as sink:
            # Alternated, so that a busy moment of a shared machine falls on both.
            for _ in range(args.repeat):
                for label, path, send_as in (
                    ("wav", wav_path, "lpcm"),
                    ("mp3", mp3_path, "lpcm"),
                    ("mp3-oggopus", mp3_path, "oggopus"),
                ):
                    if label == "mp3-oggopus" and runs[label]:
                        continue  # one run: its bytes are what it is for
                    run = measure(sink, path, send_as)
                    runs[label].append(run)
                    print(f"{label}: {run}", file=sys.stderr)
        for label, measured in runs.items():
            figures[label] = median_run(measured)
        wav, mp3 = figures["wav"], figures["mp3"]
        assert isinstance(wav, dict) and isinstance(mp3, dict)
        figures["mp3_vs_wav"] = {
            "wall_time": mp3["seconds"] / wav["seconds"],
            "wall_time_each_run": [
                m["seconds"] / w["seconds"] for w, m in zip(runs["wav"], runs["mp3"], strict=True)
            ],
            "peak_rss_mib": mp3["total_maxrss_mib"] - wav["total_maxrss_mib"],
            "sampled_rss_sum_mib": mp3["sampled_rss_sum_mib"] - wav["sampled_rss_sum_mib"],
            "sampled_pss_sum_mib": mp3["sampled_pss_sum_mib"] - wav["sampled_pss_sum_mib"],
        }
    if not args.skip_wer:
        figures["wer"] = corpus_wer(args.corpus)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
