"""Running the CLI in-process, the way a user would type it."""

from __future__ import annotations

from click.testing import CliRunner, Result

from sttcli.cli import main


def run_cli(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def against(server_address: str, *args: str, input: bytes | str | None = None) -> Result:
    """`sttcli recognize` pointed at a local plaintext server."""
    return run_cli("recognize", "--endpoint", server_address, "--insecure", *args, input=input)
