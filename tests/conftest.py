from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

# As the CLI does: gRPC's C core would otherwise log GOAWAYs and handshakes.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from support.scripted import ScriptedServer  # noqa: E402

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def stt_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the credentials they mean; the developer's own never leak in."""
    for name in (
        "YC_API_KEY",
        "YC_IAM_TOKEN",
        "IAM_TOKEN",
        "YC_FOLDER_ID",
        "FOLDER_ID",
        "STTCLI_ENDPOINT",
        "STTCLI_TRACEBACK",
    ):
        monkeypatch.delenv(name, raising=False)
