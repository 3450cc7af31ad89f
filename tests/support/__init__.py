"""Test support: real gRPC servers on loopback, audio builders, a fake clock."""
