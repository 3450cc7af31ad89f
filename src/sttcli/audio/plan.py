"""What happens to an input on its way to the wire, in one line for people (-v, --dry-run)."""

from __future__ import annotations

from sttcli.audio.sniff import Encoding
from sttcli.audio.sources import AudioSource


def describe(source: AudioSource, send_as: str) -> str:
    """E.g. `talk.mp3: MP3 44100 Hz stereo, decoded, downmixed, resampled to 16000 Hz LPCM`."""
    origin = source.origin
    sent = source.format
    channels = {1: "mono", 2: "stereo"}.get(origin.channels, f"{origin.channels} channels")
    steps = []
    if origin.decoded:
        steps.append("decoded")
        if origin.channels > 1:
            steps.append("downmixed")
        if origin.rate != sent.sample_rate:
            steps.append(f"resampled to {sent.sample_rate} Hz")
        else:
            steps.append(f"at {sent.sample_rate} Hz")
    else:
        steps.append("sent as it is")
    if sent.encoding is Encoding.OGG_OPUS:
        wire = "Ogg Opus"
    elif send_as == "oggopus":
        wire = "Ogg Opus (encoded by sttcli, a fresh stream per session)"
        if not origin.decoded:
            steps[-1] = f"encoded from {sent.sample_rate} Hz PCM"
    else:
        wire = "LPCM"
    return f"{source.name}: {origin.format} {origin.rate} Hz {channels}, {', '.join(steps)} {wire}"
