"""Running the CLI in-process, the way a user would type it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from click.testing import CliRunner, Result

from sttcli.cli import main


def run_cli(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def against(server_address: str, *args: str, input: bytes | str | None = None) -> Result:
    """`sttcli recognize` pointed at a local plaintext server."""
    return run_cli("recognize", "--endpoint", server_address, "--insecure", *args, input=input)


PYTHON_M_STTCLI = (sys.executable, "-m", "sttcli")


def spawn(
    *args: str, program: Sequence[str] = PYTHON_M_STTCLI, **popen: Any
) -> subprocess.Popen[Any]:
    """sttcli as a process of its own, for signals, pipes and kills.

    `program` is `python -m sttcli` unless a test means the installed script.
    """
    return subprocess.Popen([*program, *args], env=child_env(), **popen)


# What keeps a child on this machine: the metadata service and IAM at loopback
# ports, and a sys_vendor file that says "not a Yandex Cloud VM".
STAYS_HERE = ("YC_METADATA_ADDR", "YC_IAM_ENDPOINT", "STTCLI_SYS_VENDOR_PATH")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for sttcli as a child process: no credentials of the test's process,
    but every setting that keeps it on this machine (conftest points them at loopback)."""
    missing = [name for name in STAYS_HERE if not os.environ.get(name)]
    assert not missing, f"the test environment lost {missing}: a child could leave the machine"
    env = {
        k: v for k, v in os.environ.items() if k in STAYS_HERE or not k.startswith(("YC_", "IAM_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def spawn_against(server_address: str, *args: str, **popen: Any) -> subprocess.Popen[Any]:
    """`sttcli recognize` as a process, pointed at a local plaintext server."""
    return spawn("recognize", "--endpoint", server_address, "--insecure", *args, **popen)


@contextlib.contextmanager
def serving(*args: str) -> Iterator[str]:
    """`sttcli serve --port 0 ARGS` as a user starts it; yields its address, and stops it
    with SIGTERM, which must end it cleanly. A line naming the engine, where the
    engine writes one, must name the one asked for."""
    process = subprocess.Popen(
        [*PYTHON_M_STTCLI, "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stderr is not None
    listening = process.stderr.readline()
    if not listening.startswith("listening on "):  # a line naming the engine comes first
        engine = args[args.index("--engine") + 1] if "--engine" in args else "whisper"
        assert listening.startswith(f"engine {engine}"), listening
        listening = process.stderr.readline()
    assert listening.startswith("listening on 127.0.0.1:"), listening
    try:
        yield listening.split()[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.stderr.close()
