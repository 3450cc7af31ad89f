"""Finals within one session: every one the server sends is kept, in the order it came."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.run import recognize_path
from support.scripted import Reply, ScriptedServer, response


def test_a_final_earlier_than_the_last_is_kept_within_a_session(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    """Only resent audio can be recognized twice; within one session every final counts."""
    stt_server.script = [
        Reply(response("later words", words=[("later", 20.0, 21.0)]), after=1),
        Reply(response("earlier words", words=[("earlier", 1.0, 2.0)]), after=2),
    ]
    path = tmp_path / "a.pcm"
    path.write_bytes(bytes(16000))
    result, _ = asyncio.run(recognize_path(path, stt_server.address, rate=16000))
    assert [u.text for u in result.utterances] == ["later words", "earlier words"]
