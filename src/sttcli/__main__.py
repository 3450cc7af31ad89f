"""`python -m sttcli` runs the same command as the `sttcli` script."""

import sys

try:
    from sttcli.cli import main
except KeyboardInterrupt:  # Ctrl-C while starting up: no traceback for that
    sys.stderr.write("sttcli: interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    main()
