"""`python -m sttcli` runs the same command as the `sttcli` script."""

from sttcli.cli import main

if __name__ == "__main__":
    main()
