"""Implementations of the CLI's commands, imported only when a command runs."""
