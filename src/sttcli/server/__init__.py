"""An offline, SpeechKit-compatible server: `sttcli serve` and `sttcli recognize --local`.

engine.py      the boundary every recognizer implements
synthetic.py   a deterministic engine for tests and pipelines
sphinx.py      pocketsphinx in worker processes (the `local` extra)
servicer.py    the gRPC adapter: validation, limits, auth, responses
app.py         create_server() and the blocking serve()
"""
