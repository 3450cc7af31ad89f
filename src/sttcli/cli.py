"""The `sttcli` command: options in, one runner call, errors out as exit codes.

Only Click is imported at the top: `sttcli --version` and `--help` must not
pay for gRPC, protobuf or Rich. Each command imports its implementation when
it runs, and `_guarded()` is the one place where exceptions become messages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from sttcli import __version__
from sttcli.audio.sniff import SUPPORTED_RATES
from sttcli.commands.credential_options import credential_options
from sttcli.option_types import BoundedFloat

RATES = tuple(str(rate) for rate in SUPPORTED_RATES)
FORMATS = ("live", "text", "jsonl", "json", "srt", "vtt")
# Upper bounds that no real use reaches, so that a typo such as 1e308 is a usage error.
DAY = 86_400.0


class _OneLineErrors(click.Group):
    """Click's usage errors as one line on stderr, as sttcli's own errors are."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as error:
            where = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            _say(f"sttcli: {_first_line(error.format_message())}{where}")
            _exit(error.exit_code)
        except click.ClickException as error:
            _say(f"sttcli: {_first_line(error.format_message())}")
            _exit(error.exit_code)
        except click.exceptions.Abort:
            _say("sttcli: interrupted")
            _exit(130)
        _exit(code if isinstance(code, int) else 0)


def _first_line(text: str) -> str:
    from sttcli.safe_text import one_line

    return one_line(text.strip())


@click.group(
    cls=_OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="sttcli", message="%(prog)s %(version)s")
def main() -> None:
    """Streaming speech recognition with Yandex SpeechKit (gRPC API v2).

    Results go to stdout, everything else to stderr. Exit codes: 0 ok,
    1 internal error, 2 usage or bad input (a bad key file or yc config
    too), 3 request rejected, 4 not authorized (IAM or yc refused too),
    5 quota exceeded, 6 service, IAM or metadata unavailable or timed out,
    7 server failure, 130 interrupted, 143 terminated.
    """
    from sttcli.stdio import reserve_closed_streams

    reserve_closed_streams()


@main.command(context_settings={"show_default": True})
@click.argument("audio", nargs=-1, metavar="[AUDIO]...")
@click.option(
    "--from-file",
    "from_file",
    metavar="LIST",
    help="Read input paths from LIST, one per line ('-' for stdin; # comments).",
)
@click.option(
    "-r",
    "--rate",
    type=click.IntRange(min=1000, max=768000),
    metavar="HZ",
    help="Sample rate of raw LPCM input, any rate (headers give their own).  [default: 48000]",
)
@click.option(
    "--channels",
    type=click.IntRange(min=1, max=64),
    help="Channels of raw LPCM input, interleaved; downmixed to mono (headers give their own).  "
    "[default: 1]",
)
@click.option(
    "--send-rate",
    type=click.Choice(RATES),
    help="Rate sent, resampling if needed.  [default: the input's if the API takes it, else 16000]",
)
@click.option(
    "--send-as",
    type=click.Choice(("lpcm", "oggopus")),
    default="lpcm",
    help="Send PCM as is, or encode it to Ogg Opus (about a tenth of the bytes).",
)
@click.option(
    "-e",
    "--encoding",
    type=click.Choice(("auto", "lpcm", "oggopus")),
    default="auto",
    help="Input encoding; auto tells formats by their magic numbers, raw LPCM otherwise.",
)
@click.option(
    "--chunk-size", type=int, default=4000, metavar="BYTES", help="Audio bytes per message."
)
@click.option(
    "--speed",
    type=BoundedFloat(0.0, 1000.0),
    default=0.0,
    help="Pacing: 0 as fast as possible, 1 real time, 2 twice real time.",
)
@click.option(
    "-l", "--lang", default="", help="Language code, e.g. ru-RU, en-US (default: the server's)."
)
@click.option("-m", "--model", default="", help="Recognition model (default: the server's).")
@click.option("--profanity-filter", is_flag=True, help="Mask profanity.")
@click.option("--single-utterance", is_flag=True, help="Stop after the first utterance.")
@click.option("--raw-results", is_flag=True, help="Numbers as words, as recognized.")
@click.option("--literature-text", is_flag=True, help="Literary style: punctuation and capitals.")
@click.option(
    "--partial/--no-partial",
    default=None,
    help="Ask for partial results.  [default: on for live, off otherwise]",
)
@click.option(
    "--normalize-partials", is_flag=True, help="Send x-normalize-partials: true (experimental)."
)
@click.option(
    "--endpoint",
    envvar="STTCLI_ENDPOINT",
    show_envvar=True,
    default="stt.api.cloud.yandex.net:443",
    metavar="HOST:PORT",
    help="Server to use.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Recognize offline with the embedded engine (needs sttcli[local]).",
)
@click.option(
    "--local-engine",
    type=click.Choice(("whisper", "pocketsphinx")),
    default="whisper",
    help="The engine of --local.",
)
@click.option(
    "--local-model-dir",
    type=click.Path(exists=True, file_okay=False),
    help="A CTranslate2 Whisper model directory for --local.",
)
@click.option("--insecure", is_flag=True, help="Plaintext channel, for local servers.")
@click.option("--ca-file", metavar="PATH", help="PEM roots to verify the server with.")
@credential_options
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Extra call metadata; repeatable.",
)
@click.option(
    "--timeout",
    type=BoundedFloat(0.0, 30 * DAY, open_low=True),
    metavar="SECONDS",
    help="Deadline for one input, all of its sessions together.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 1000),
    default=3,
    help="Retries per incident for UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, INTERNAL.",
)
@click.option(
    "--max-session-seconds",
    type=BoundedFloat(1.0, DAY),
    default=290.0,
    help="Audio per session before rotating at a pause.",
)
@click.option(
    "--max-session-bytes",
    type=int,
    default=9_500_000,
    help="Bytes per session before rotating at a pause.",
)
@click.option(
    "--keepalive-silence",
    type=BoundedFloat(0.0, 3600.0),
    default=3.0,
    metavar="SECONDS",
    help="Send silence when a pipe stalls this long (LPCM; 0: off).",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 60), default=1, help="Inputs recognized in parallel."
)
@click.option(
    "--max-rps",
    type=BoundedFloat(0.0, 10_000.0, open_low=True),
    default=40.0,
    help="Start streams no faster than this per second.",
)
@click.option(
    "--output-dir",
    metavar="DIR",
    help="One result file per input (DIR/<stem>.txt, .json, .srt...), written atomically.",
)
@click.option(
    "--skip-existing", is_flag=True, help="With --output-dir: skip inputs whose result file exists."
)
@click.option("--fail-fast", is_flag=True, help="Stop all inputs at the first failure.")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="Output format.  [default: live on a terminal, else text]",
)
@click.option(
    "--timestamps",
    is_flag=True,
    help="Text output: start each line with [MM:SS.mmm --> MM:SS.mmm].",
)
@click.option(
    "--max-line-width",
    type=click.IntRange(1),
    metavar="CHARS",
    help="srt/vtt: characters per subtitle line.  [default: 42]",
)
@click.option(
    "--max-lines",
    type=click.IntRange(1),
    metavar="N",
    help="srt/vtt: lines per subtitle cue.  [default: 2]",
)
@click.option("-o", "--output", metavar="PATH", help="Write results to PATH instead of stdout.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the config and metadata that would be sent; do not connect.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", count=True, help="Say what is happening on stderr (-vv: more).")
@click.pass_context
def recognize(ctx: click.Context, /, **params: Any) -> None:
    """Recognize speech in AUDIO files (or stdin, as '-').

    AUDIO is any recording FFmpeg decodes (MP3, M4A, FLAC, Ogg, WAV, AIFF,
    AMR, video files), or raw 16-bit LPCM. With no AUDIO, piped stdin is read.
    Credentials come from the first of: the flags; YC_API_KEY,
    YC_IAM_TOKEN, IAM_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE; a yc profile; the
    metadata service of a Yandex Cloud VM (see `sttcli auth`).
    """
    params["endpoint_given"] = (
        ctx.get_parameter_source("endpoint") is click.core.ParameterSource.COMMANDLINE
    )
    if not params["audio"] and not params["from_file"] and _is_terminal(sys.stdin):
        click.echo(ctx.get_usage(), err=True)
        click.echo("Give AUDIO files, or pipe audio to stdin.", err=True)
        ctx.exit(2)

    def run() -> int:
        from sttcli.commands.recognize import run_recognize

        return run_recognize(params)

    _exit(_guarded(run, verbose=params["verbose"], params=params))


@main.command()
@credential_options
@click.option(
    "--endpoint",
    envvar="STTCLI_ENDPOINT",
    show_envvar=True,
    default="stt.api.cloud.yandex.net:443",
    metavar="HOST:PORT",
    help="The server the credential is for: off SpeechKit only named credentials are used.",
)
@click.option("--check", is_flag=True, help="Also fetch a token, and say whether that worked.")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-v", "--verbose", count=True, help="Say what is happening on stderr.")
def auth(**params: Any) -> None:
    """Say which credential the chain resolves to, without recognizing anything.

    The chain, first match wins: --api-key / --iam-token / --sa-key-file;
    YC_API_KEY, YC_IAM_TOKEN / IAM_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE; a yc
    profile (--profile, YC_PROFILE, the current one); the metadata service of
    a Yandex Cloud VM. For an --endpoint other than SpeechKit's, only
    credentials named for the run: no unnamed yc profile, no metadata service
    unasked. Nothing is fetched unless --check is given.
    """

    def run() -> int:
        from sttcli.commands.auth import run_auth

        return run_auth(params)

    _exit(_guarded(run, verbose=params["verbose"], params=params))


@main.command(context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=50051, help="Port; 0 picks a free one."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    show_default="one per core",
    help="Streams recognized at once, one process each.",
)
@click.option(
    "--engine",
    type=click.Choice(("whisper", "pocketsphinx", "synthetic")),
    default="whisper",
    help="Recognizer behind the server.",
)
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False),
    help="A CTranslate2 Whisper model directory to use for every language (--engine whisper).",
)
@click.option("--api-key", metavar="KEY", help="Require 'authorization: Api-Key KEY'.")
@click.option("--iam-token", metavar="TOKEN", help="Require 'authorization: Bearer TOKEN'.")
@click.option(
    "--max-session-seconds",
    type=BoundedFloat(0.0, DAY, open_low=True),
    default=300.0,
    help="Audio one stream may carry.",
)
@click.option(
    "--max-session-bytes", type=int, default=10 * 1024 * 1024, help="Bytes one stream may carry."
)
@click.option("-q", "--quiet", is_flag=True, help="No per-stream log lines.")
@click.option("-v", "--verbose", count=True, help="More log lines.")
def serve(**params: Any) -> None:
    """Run a SpeechKit-compatible server on an offline engine.

    Prints the engine and its model, then 'listening on HOST:PORT', on stderr
    when ready. Ctrl-C or SIGTERM
    stops it, giving running streams a moment to finish.
    """

    def run() -> int:
        from sttcli.commands.serve import run_serve

        return run_serve(params)

    _exit(_guarded(run, verbose=params["verbose"], params=params))


def _guarded(run: Callable[[], int], *, verbose: int, params: dict[str, Any]) -> int:
    """Run a command; every exception becomes one line on stderr and an exit code.

    STTCLI_TRACEBACK=1 re-raises instead, for debugging sttcli itself.
    """
    from sttcli.auth.credentials import known_secrets
    from sttcli.auth.secrets import KNOWN
    from sttcli.diagnostics import Scrubber
    from sttcli.errors import ExitCode, Interrupted, OutputError, SttError
    from sttcli.safe_text import one_line, printable

    KNOWN.forget_all()  # this command's secrets: flags, environment, then what the chain reads
    scrub = Scrubber(known_secrets(params))
    # gRPC's C core logs to stderr on its own (handshakes, GOAWAYs): sttcli
    # reports what matters in its own words, so silence it unless asked.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        return run()
    except (SttError, OutputError) as error:
        if os.environ.get("STTCLI_TRACEBACK"):
            raise
        _say(one_line(scrub(f"sttcli: {error.message}")))
        return int(error.exit_code)
    except KeyboardInterrupt:
        _say("sttcli: interrupted")
        return int(Interrupted().exit_code)
    except BrokenPipeError:
        _silence_stdout()
        return int(ExitCode.OK)
    except Exception as error:  # a bug: say so briefly, -v shows where
        if os.environ.get("STTCLI_TRACEBACK"):
            raise
        if verbose:
            import traceback

            _say(
                printable(
                    scrub("".join(traceback.format_exception(error)).rstrip()), keep_newlines=True
                )
            )
        _say(one_line(scrub(f"sttcli: internal error: {type(error).__name__}: {error}")))
        if not verbose:
            _say("sttcli: run with -v for details")
        return int(ExitCode.INTERNAL_ERROR)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _say(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # stderr is closed or full: the exit code still tells


def _silence_stdout() -> None:
    """The reader went away (`| head -1`): stop quietly, and let exit not complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _exit(code: int) -> NoReturn:
    from sttcli.stdio import flush_quietly

    flush_quietly()
    sys.exit(code)
