"""What happens to an input on its way to the wire, in one line for people (-v, --dry-run)."""

from __future__ import annotations

from sttcli.audio.sniff import Encoding
from sttcli.audio.sources import AudioSource


def describe(source: AudioSource, send_as: str) -> str:
    """E.g. `talk.mp3: MP3 44100 Hz stereo, decoded, downmixed, resampled to 16000 Hz LPCM`."""
    origin = source.origin
    sent = source.format
    channels = {1: "mono", 2: "stereo"}.get(origin.channels, f"{origin.channels} channels")
    encodes = send_as == "oggopus" and sent.encoding is Encoding.LPCM
    wire = "Ogg Opus (encoded by sttcli, one Ogg stream per session)" if encodes else "LPCM"
    if not origin.decoded:
        steps = ["sent as it is (zero-copy)"] if not encodes else [f"sent as {wire}"]
    else:
        steps = ["decoded"]
        if origin.channels > 1:
            steps.append("downmixed")
        if origin.rate != sent.sample_rate:
            steps.append(f"resampled to {sent.sample_rate} Hz {wire}")
        else:
            steps.append(f"sent as {sent.sample_rate} Hz {wire}")
    return f"{source.name}: {origin.format} {origin.rate} Hz {channels}, {', '.join(steps)}"
