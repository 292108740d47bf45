"""`podiam serve` does not let a slow client hold a connection: a request head left unfinished is
closed after the header-read limit (10 s), while complete requests are answered meanwhile. The
limits themselves, over HTTP and HTTPS and for the webhook, are tested with short values in
crates/tls/tests/timeouts.rs and crates/webhook/tests/http.rs."""

from __future__ import annotations

import socket
import time

import requests

HEADER_READ_LIMIT = 10.0


def closed_after(sock: socket.socket, patience: float) -> float:
    """Seconds until the server closes `sock` (whatever it sends first)."""
    start = time.monotonic()
    sock.settimeout(patience)
    while True:
        try:
            if not sock.recv(4096):
                return time.monotonic() - start
        except ConnectionResetError:
            return time.monotonic() - start
        except socket.timeout:
            raise AssertionError(f"connection still open after {patience} s") from None


def test_unfinished_request_head_is_closed(server):
    host, port = "127.0.0.1", server.port
    stalled = socket.create_connection((host, port), timeout=5)
    silent = socket.create_connection((host, port), timeout=5)
    stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    # meanwhile, complete requests are answered
    assert requests.get(f"{server.endpoint}/healthz", timeout=5).status_code == 200
    t = closed_after(stalled, HEADER_READ_LIMIT + 10)
    assert HEADER_READ_LIMIT - 1 <= t <= HEADER_READ_LIMIT + 5, t
    # a connection that never sent a byte went the same way
    assert closed_after(silent, 5) < 5
    stalled.close()
    silent.close()
