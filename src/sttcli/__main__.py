"""`python -m sttcli` and the `sttcli` script: the same command, started the same way.

The CLI's imports take tens of milliseconds; a Ctrl-C that comes during them
is one line and exit 130, like any other interruption, not a traceback.
"""

import sys


def run() -> None:
    try:
        from sttcli.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("sttcli: interrupted\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
