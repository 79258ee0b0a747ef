"""Small helpers shared by the test fixtures."""

import socket
import time


_GIVEN = set()  # ports handed out in this session: chosen now, bound later by another process


def free_port(host="127.0.0.1"):
    """A port nothing listens on, and not one handed out before in this session: a hub takes three
    at once and binds them seconds later, so the kernel's next free port may be one of them."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_for_port(host, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")
