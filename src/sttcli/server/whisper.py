"""The Whisper engine: CTranslate2 decoders in worker processes, and language routing.

Which model hears a stream depends on its language: `en-US` (or none) goes
to tiny.en, the other languages Whisper knows to the multilingual base, and
`auto` to base with language detection. A model directory given with
`--model-dir` hears every language it can. The models are verified (sha256)
here in the server process, before any worker loads them; a worker loads
the default model when it starts and any other the first time a stream
needs it.

Each worker decodes one stream at a time with `threads` CTranslate2 threads;
the engine picks threads so that workers x threads stays within the cores.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from sttcli.errors import UsageError
from sttcli.server import whisper_models as models
from sttcli.server.engine import EngineError
from sttcli.server.whisper_models import ModelError, WhisperModelSpec
from sttcli.server.workers import Worker, WorkerEngine, WorkerSession, serve_streams

REQUIRED = ("faster_whisper", "ctranslate2", "numpy", "soxr")


def require_whisper() -> None:
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the Whisper engine needs {', '.join(missing)}: {models.LOCAL_EXTRA}")


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """CTranslate2 threads for each worker, so that workers x threads <= cores."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


class WhisperEngine(WorkerEngine):
    name = "whisper"
    languages: tuple[str, ...] = models.SPEECHKIT_LANGUAGES

    def __init__(
        self, workers: int = 1, *, model_dir: str | None = None, verify_all: bool = False
    ) -> None:
        require_whisper()
        models.prepare_offline()
        self.threads = threads_per_worker(workers)
        self._lock_models = threading.Lock()
        self._specs: dict[str, WhisperModelSpec] = {}
        if model_dir is not None:
            self._custom: WhisperModelSpec | None = models.from_directory(model_dir)
            self.default = self._custom
        else:
            self._custom = None
            tiny = models.tiny_en()
            if tiny is None:
                raise ModelError(f"no Whisper model is installed: {models.LOCAL_EXTRA}")
            self._specs["tiny.en"] = tiny
            self.default = tiny
            if verify_all and self._base_installed():
                self._model("base")
        super().__init__(workers)

    @staticmethod
    def _base_installed() -> bool:
        return all(importlib.util.find_spec(name) for name in models.BASE_PACKAGES)

    def describe(self) -> str:
        known = [spec.label for spec in self._specs.values()] or [self.default.label]
        return (
            f"engine whisper, model {', '.join(known)}, "
            f"{len(self._all)} worker(s) x {self.threads} thread(s)"
        )

    def language_problem(self, language: str) -> str | None:
        """Why a stream in `language` cannot be heard here, or None."""
        return models.language_problem(
            language, custom=self._custom, base_installed=self._base_installed()
        )

    def route(self, language: str) -> WhisperModelSpec:
        """The verified model that hears `language` (see the module docstring)."""
        if self._custom is not None:
            return self._custom
        return self._model("tiny.en" if models.is_english(language) else "base")

    def _model(self, name: str) -> WhisperModelSpec:
        with self._lock_models:
            if name not in self._specs:
                spec = models.base() if name == "base" else models.tiny_en()
                if spec is None:
                    raise ModelError(f"Whisper {name} is not installed")
                self._specs[name] = spec
            return self._specs[name]

    def _new_worker(self) -> Worker:
        return Worker(self._context, worker_main, (self.default, self.threads), "sttcli-whisper")

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> WorkerSession:
        try:
            spec = self.route(language)
        except ModelError as error:
            raise EngineError(str(error)) from None
        return self._start("start", sample_rate, partials, language, spec)


def worker_main(connection: Connection, default: WhisperModelSpec, threads: int) -> None:
    """A worker process: load the default model once, then serve streams."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    models.prepare_offline()
    from sttcli.server.whisper_decoder import VoiceActivity, WhisperRecognizer, WhisperStream

    loaded: dict[str, WhisperRecognizer] = {}

    def recognizer(spec: WhisperModelSpec) -> WhisperRecognizer:
        key = str(spec.path)
        if key not in loaded:
            loaded[key] = WhisperRecognizer(spec, threads=threads)
        return loaded[key]

    try:
        recognizer(default)
        vad = VoiceActivity()
    except Exception as error:  # a broken install: say why, once
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return

    def start(rate: int, partials: bool, language: str, spec: WhisperModelSpec) -> Any:
        return WhisperStream(
            recognizer(spec), vad, rate, models.whisper_language(language), partials=partials
        )

    serve_streams(connection, start)
