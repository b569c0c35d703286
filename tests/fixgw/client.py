"""A FIX 4.4 test client written with simplefix, over a plain socket."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import simplefix


class FixClient:
    def __init__(self, port: int, sender: str, target: str, timeout: float = 10.0) -> None:
        self.sender, self.target, self.timeout = sender, target, timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.parser = simplefix.FixParser()
        self.seq = 0

    def send(self, msg_type: str, *fields: tuple[int, str]) -> None:
        self.seq += 1
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4")
        msg.append_pair(35, msg_type)
        msg.append_pair(34, self.seq)
        msg.append_pair(49, self.sender)
        msg.append_pair(52, datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3])
        msg.append_pair(56, self.target)
        for tag, value in fields:
            msg.append_pair(tag, value)
        self.sock.sendall(msg.encode())

    def logon(self, username: str | None, token: str | None, *, reset: bool = True) -> None:
        """Logon; ``reset``: both sides start again at sequence number 1 (141=Y)."""
        fields = [(98, "0"), (108, "30")]
        if reset:
            fields.append((141, "Y"))
        if username is not None:
            fields.append((553, username))
        if token is not None:
            fields.append((554, token))
        self.send("A", *fields)

    def receive(self) -> simplefix.FixMessage | None:
        """The next message, or None when the gateway closed the connection."""
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                return msg
            if time.monotonic() > deadline:
                raise AssertionError("no message from the gateway")
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.parser.append_buffer(data)

    def close(self) -> None:
        self.sock.close()
