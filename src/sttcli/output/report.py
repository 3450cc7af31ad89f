"""What a batch tells the person or the CI log running it, on stderr."""

from __future__ import annotations

from collections.abc import Callable

from sttcli.output.render import InputRef, Quiet
from sttcli.results import InputResult

Say = Callable[[str], None]


class InputLines(Quiet):
    """One line per finished input: `ok NAME 12.3 s audio` or `FAILED NAME: reason`."""

    def __init__(self, say: Say, *, successes: bool = True) -> None:
        self.say = say
        self.successes = successes

    def done(self, ref: InputRef, result: InputResult) -> None:
        if result.error is not None:
            reason = result.error.message
            reason = reason.removeprefix(f"{ref.name}: ")  # input errors name it already
            self.say(f"FAILED {ref.name}: {reason}")
        elif self.successes:
            self.say(f"ok {ref.name} {result.audio_duration_s:.1f} s audio")


def summary(
    results: list[InputResult], *, wall_seconds: float, skipped: int = 0, not_run: int = 0
) -> str:
    ok = sum(result.error is None for result in results)
    # Stopped by Ctrl-C or SIGTERM: not a failure of the input, and not "not run" either.
    interrupted = sum(r.error is not None and r.error.code == "INTERRUPTED" for r in results)
    failed = len(results) - ok - interrupted
    audio = sum(result.audio_duration_s for result in results)
    parts = [f"{ok} ok", f"{failed} failed"]
    if interrupted:
        parts.append(f"{interrupted} interrupted")
    if skipped:
        parts.append(f"{skipped} skipped")
    if not_run:
        parts.append(f"{not_run} not run")
    speed = audio / wall_seconds if wall_seconds > 0 else 0.0
    return (
        f"summary: {', '.join(parts)}; {_duration(audio)} of audio in {_duration(wall_seconds)} "
        f"({speed:.1f} audio s per wall s)"
    )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
