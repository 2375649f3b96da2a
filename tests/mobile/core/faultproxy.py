"""A small HTTP-aware TCP proxy for fault injection with real sockets (no mocks of requests).

Each request is read whole from the device, then handled by the next planned
fault whose path matches (else passed through):

- ``drop_request``: close the device's connection; the server never sees it.
- ``drop_response``: forward, let the server commit and answer, then close the
  device's connection without the answer.
- ``duplicate``: deliver the same request to the server twice, answer the second.

Upstream connections are one per request (``Connection: close``), so a fault
hits exactly one request.
"""
from __future__ import annotations

import socket
import threading


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to ``upstream_port``."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.plan: list[tuple[str, str]] = []
        self.seen: list[tuple[str, str]] = []  # (path, action) in arrival order
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The address devices use."""
        return f"http://127.0.0.1:{self.port}"

    def inject(self, path_suffix: str, action: str, times: int = 1) -> None:
        """Plan ``action`` for the next ``times`` requests whose path ends with ``path_suffix``."""
        with self._lock:
            self.plan.extend([(path_suffix, action)] * times)

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            path = request.split(b" ", 2)[1].split(b"?")[0].decode()
            action = self._next_action(path)
            self.seen.append((path, action))
            if action == "drop_request":
                return
            answer = self._forward(request)
            if action == "duplicate":
                answer = self._forward(request)
            if action != "drop_response":
                conn.sendall(answer)

    def _next_action(self, path: str) -> str:
        with self._lock:
            for i, (suffix, action) in enumerate(self.plan):
                if path.endswith(suffix):
                    del self.plan[i]
                    return action
        return "pass"

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
            up.sendall(request)
            chunks = []
            while chunk := up.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _read_request(conn: socket.socket) -> bytes | None:
    """One HTTP request, rewritten to ``Connection: close``; None when the device hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body
