"""A small HTTP-aware TCP proxy that injects network faults with real sockets (no mocks of ``requests``).

Devices talk to :attr:`FaultProxy.url`; the proxy reads each HTTP request whole,
then applies the next planned :class:`Fault` whose path matches (else passes it
through). Every upstream connection carries one request (``Connection: close``),
so a fault hits exactly one request.

Actions:

- ``drop_request``   close the device's connection; the server never sees the request.
- ``drop_response``  forward, let the server commit and answer, close the device's connection without the answer.
- ``duplicate``      deliver the same request bytes to the server twice, answer the second.
- ``capture``        keep the request bytes (they are "still in the network"), close the device's connection;
                     :meth:`FaultProxy.deliver` sends them later, in any order.
- ``hold_response``  forward, read the server's whole answer, set ``reached``, and send the answer only once
                     ``release`` is set (a test kills the device process meanwhile).
- ``after_forward``  forward the request bytes, call ``hook`` (e.g. SIGKILL the server) before reading the answer.
- ``pass``           forward; call ``hook`` if one was given, then answer (the next request meets the new fault).

When nothing listens upstream the proxy answers ``502 Bad Gateway`` like a real
gateway in front of a stopped server. :meth:`refuse` closes the proxy's own
listening socket, so the device's connections are refused; :meth:`listen` opens
the same port again. Request bytes of every push are kept in ``pushes`` (to
replay them later).
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

_GATEWAY_BODY = b'{"code":502,"status":"Bad Gateway","message":"upstream unavailable"}'
BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n%s" % (len(_GATEWAY_BODY), _GATEWAY_BODY))


@dataclass
class Fault:
    """One planned fault; the proxy sets ``reached`` when it applies it."""

    path_suffix: str
    action: str
    hook: Callable[[], None] | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    request: bytes = b""
    response: bytes = b""

    def wait(self, timeout: float = 20.0) -> "Fault":
        """Block until the proxy applied this fault (polling an Event, never a bare sleep)."""
        if not self.reached.wait(timeout):
            raise AssertionError(f"fault {self.action} on {self.path_suffix} was never reached within {timeout}s")
        return self


class FaultProxy:
    """Listens on 127.0.0.1 (a free port, kept across :meth:`refuse` / :meth:`listen`) and forwards to ``upstream_port``."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.plan: list[Fault] = []
        self.seen: list[tuple[str, str]] = []  # (path, action) in arrival order
        self.pushes: list[bytes] = []          # raw bytes of every push request that reached the proxy
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.port = 0
        self.listen()

    @property
    def url(self) -> str:
        """The address devices use."""
        return f"http://127.0.0.1:{self.port}"

    # --- planning ---------------------------------------------------------------------------

    def inject(self, path_suffix: str, action: str, times: int = 1, hook: Callable[[], None] | None = None) -> list[Fault]:
        """Plan ``action`` for the next ``times`` requests whose path ends with ``path_suffix``."""
        faults = [Fault(path_suffix, action, hook) for _ in range(times)]
        with self._lock:
            self.plan.extend(faults)
        return faults

    def clear(self) -> None:
        """Forget the faults not yet applied."""
        with self._lock:
            self.plan.clear()

    def actions_on(self, path_suffix: str) -> list[str]:
        """The actions applied to requests on a path, in arrival order."""
        return [a for p, a in list(self.seen) if p.endswith(path_suffix)]

    # --- listening socket ---------------------------------------------------------------------

    def listen(self) -> None:
        """Accept connections (again, on the same port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._sock, self.port = sock, sock.getsockname()[1]
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def refuse(self) -> None:
        """Stop listening: connections to :attr:`url` are refused by the kernel."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        """Stop listening and release every held answer."""
        self.refuse()
        with self._lock:
            for fault in self.plan:
                fault.release.set()

    # --- delivering bytes directly ----------------------------------------------------------------

    def deliver(self, request: bytes, port: int | None = None) -> tuple[int, dict]:
        """Send captured request bytes to the server (or to another on ``port``) now; returns (HTTP status, JSON answer)."""
        return parse_response(self._forward(request, port=port))

    # --- internals ----------------------------------------------------------------------------

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._handle(conn)
            except OSError:
                pass  # the device went away (e.g. its process was killed): nothing to answer

    def _handle(self, conn: socket.socket) -> None:
        request = read_request(conn)
        if request is None:
            return
        path = request.split(b" ", 2)[1].split(b"?")[0].decode()
        fault = self._next_fault(path)
        action = fault.action if fault else "pass"
        with self._lock:
            self.seen.append((path, action))
            if path.endswith("/sync/push"):
                self.pushes.append(request)
        if fault:
            fault.request = request
        if action in ("drop_request", "capture"):
            if fault:
                fault.reached.set()
            return
        hook = fault.hook if fault and action == "after_forward" else None
        answer = self._forward(request, hook)
        if action == "duplicate":
            answer = self._forward(request)
        if fault:
            fault.response = answer
            fault.reached.set()
        if action == "drop_response" or not answer:
            return
        if action == "hold_response":
            fault.release.wait(60)
        if action == "pass" and fault and fault.hook:
            # e.g. stop the server or refuse connections: before the device has this answer, so its
            # next request cannot race past the new fault
            fault.hook()
        conn.sendall(answer)

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.plan):
                if path.endswith(fault.path_suffix):
                    return self.plan.pop(i)
        return None

    def _forward(self, request: bytes, hook: Callable[[], None] | None = None, port: int | None = None) -> bytes:
        """Send one request upstream; its whole answer (b"" if the server died mid-request, 502 if it is down)."""
        try:
            up = socket.create_connection(("127.0.0.1", port or self.upstream_port), timeout=30)
        except OSError:
            return BAD_GATEWAY
        chunks = []
        with up:
            try:
                up.sendall(request)
                if hook is not None:
                    hook()
                while chunk := up.recv(65536):
                    chunks.append(chunk)
            except OSError:
                return b""
        return b"".join(chunks)


def read_request(conn: socket.socket) -> bytes | None:
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


def parse_response(raw: bytes) -> tuple[int, dict]:
    """(status, JSON body) of a raw HTTP/1.1 answer with a Content-Length or read to the close."""
    if not raw:
        raise ConnectionError("no answer")
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    return status, json.loads(decompress(body, headers.get(b"content-encoding", b"")) or b"{}")


def decompress(body: bytes, content_encoding: bytes) -> bytes:
    """An answer's body as sent before compression (the server answers zstd or gzip to clients that ask)."""
    encoding = content_encoding.strip().lower()
    if encoding == b"gzip":
        import gzip

        return gzip.decompress(body)
    if encoding == b"zstd":
        from backports import zstd

        return zstd.decompress(body)
    return body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out
