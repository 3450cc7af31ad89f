"""Credentials: where they come from, how they are sent, and how they are shown (never whole)."""
