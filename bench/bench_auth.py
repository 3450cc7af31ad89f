"""What the credential chain costs: signing, one key exchange, and start-up.

What is measured:
- PS256 signing of the IAM JWT with a 2048-bit key (PyJWT on `cryptography`);
- one whole exchange as `RefreshingToken` does it (sign, POST on loopback,
  read the answer) against a small IAM stand-in in this process;
- wall time of `sttcli recognize --dry-run` as a process with an API key in
  the environment against the same with a key file: the key file's run pays
  for importing PyJWT and `cryptography`, the API key's must not (checked by
  listing what an API-key run imported). Runs are interleaved; medians.

Why: a token is fetched at most once an hour, so the exchange only has to be
small next to a session; what every run pays is start-up, and a user of API
keys should pay nothing for key files.

    python bench/bench_auth.py [--runs 15] [--exchanges 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sttcli.auth.keyfile import key_from_fields, signed_jwt, token_fetcher  # noqa: E402
from sttcli.auth.tokens import RefreshingToken  # noqa: E402

HEAVY = ("jwt", "cryptography", "yaml", "urllib.request")

_IMPORTED = """
import contextlib, io, json, sys
from sttcli.cli import main
sys.argv = ["sttcli", "recognize", "--dry-run", {audio!r}]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass
print(json.dumps(sorted(h for h in {heavy!r} if h in sys.modules)))
"""


class _Iam(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"iamToken": "t1.bench", "expiresAt": "2099-01-01T00:00:00Z"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def key_fields() -> dict[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"id": "ajebenchkey", "service_account_id": "ajebenchsa", "private_key": pem}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--exchanges", type=int, default=50)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")

    fields = key_fields()
    key = key_from_fields(fields, origin="bench")
    signing = []
    for _ in range(200):
        start = time.perf_counter()
        signed_jwt(key)
        signing.append(time.perf_counter() - start)
    print(f"PS256 JWT signing: median {median_ms(signing):.2f} ms")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Iam)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/iam/v1/tokens"
    exchanges = []
    for _ in range(args.exchanges):
        tokens = RefreshingToken(token_fetcher(key, url))
        start = time.perf_counter()
        tokens.current()
        exchanges.append(time.perf_counter() - start)
    server.shutdown()
    print(f"key exchange on loopback (sign, POST, parse): median {median_ms(exchanges):.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "a.wav"
        audio.write_bytes(_wav())
        keyfile = Path(tmp) / "key.json"
        keyfile.write_text(json.dumps(fields))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "IAM_"))}
        base.update(PYTHONPATH=str(ROOT / "src"), HOME=tmp)
        envs = {
            "YC_API_KEY": {**base, "YC_API_KEY": "AQVNbenchkey"},
            "YC_SERVICE_ACCOUNT_KEY_FILE": {**base, "YC_SERVICE_ACCOUNT_KEY_FILE": str(keyfile)},
        }
        command = [sys.executable, "-m", "sttcli", "recognize", "--dry-run", str(audio)]
        times: dict[str, list[float]] = {name: [] for name in envs}
        for round_number in range(args.runs + 2):
            for name, env in envs.items():
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                if round_number >= 2:
                    times[name].append(time.perf_counter() - start)
        for name, samples in times.items():
            print(f"recognize --dry-run with {name}: median {median_ms(samples):.0f} ms")
        code = _IMPORTED.format(audio=str(audio), heavy=HEAVY)
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=envs["YC_API_KEY"],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"imported by an API-key run, of {', '.join(HEAVY)}: {done.stdout.strip()}")


def _wav() -> bytes:
    import struct

    pcm = b"\x00\x00" * 16000
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm))
    return b"RIFF" + struct.pack("<I", len(body) + len(pcm)) + body + pcm


if __name__ == "__main__":
    main()
