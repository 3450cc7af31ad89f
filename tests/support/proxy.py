"""A TCP proxy on loopback whose connections a test can cut, as a network would."""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._severed: set[socket.socket] = set()
        self.severed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._pairs.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        if source in self._severed:
            return  # reset, not closed: no FIN may follow
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self) -> None:
        """Reset every open connection, the way a dropped network link ends them.

        A socket closed while a pump thread waits in recv() on it stays open
        in the kernel until that recv returns, so the connection would live
        on: SHUT_RD wakes the pumps first (it sends nothing), and the close,
        with a zero linger, then sends the reset at once.
        """
        with self._lock:
            pairs, self._pairs = self._pairs, []
            for pair in pairs:
                self._severed.update(pair)
        for pair in pairs:
            for sock in pair:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
                sock.close()
        self.severed += 1

    def close(self) -> None:
        self._listener.close()
        self.sever()
