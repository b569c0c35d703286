"""A FIX 4.4 test client written with simplefix, over a plain socket.

It keeps sequence numbers in both directions across connections (``reconnect``), so a
test can log on again without resetting them and see the gateway's recovery: a gap in
what it receives is asked for again (ResendRequest), a repeat it already has
(PossDupFlag) is dropped, and ``receive`` hands out messages in sequence order. It
answers TestRequest, and a ResendRequest by resending its application messages
(PossDupFlag) with SequenceReset-GapFills for the rest.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import simplefix

SESSION_ADMIN = {b"0", b"1", b"2", b"4"}  # Heartbeat, TestRequest, ResendRequest, SequenceReset


def now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class FixClient:
    def __init__(self, port: int, sender: str, target: str, timeout: float = 10.0) -> None:
        self.port, self.sender, self.target, self.timeout = port, sender, target, timeout
        self.seq = 0  # the last sequence number sent
        self.expected = 1  # the next sequence number to receive
        self._held: dict[int, simplefix.FixMessage] = {}  # received ahead of a gap
        self._done: set[int] = set()  # handed out ahead of a gap (the Logon)
        self._asked_resend = False
        self._kept: dict[int, tuple[str, tuple[tuple[int, str], ...]]] = {}
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.parser = simplefix.FixParser()

    def reconnect(self) -> None:
        """A new connection; sequence numbers carry on."""
        self.close()
        self._held.clear()
        self._asked_resend = False
        self._connect()

    def send(self, msg_type: str, *fields: tuple[int, str]) -> int:
        self.seq += 1
        self._write(msg_type, self.seq, fields)
        if msg_type.encode() not in SESSION_ADMIN and msg_type not in ("A", "5"):
            self._kept[self.seq] = (msg_type, fields)  # an application message: resendable
        return self.seq

    def _write(self, msg_type: str, seq: int, fields, header=()) -> None:  # type: ignore[no-untyped-def]
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4")
        msg.append_pair(35, msg_type)
        msg.append_pair(34, seq)
        msg.append_pair(49, self.sender)
        msg.append_pair(52, now())
        msg.append_pair(56, self.target)
        for tag, value in (*header, *fields):
            msg.append_pair(tag, value)
        self.sock.sendall(msg.encode())

    def logon(self, username: str | None, token: str | None, *, reset: bool = True) -> None:
        """Logon; ``reset``: both sides start again at sequence number 1 (141=Y)."""
        fields = [(98, "0"), (108, "30")]
        if reset:
            self.seq, self.expected = 0, 1
            self._done.clear()
            self._kept.clear()
            fields.append((141, "Y"))
        if username is not None:
            fields.append((553, username))
        if token is not None:
            fields.append((554, token))
        self.send("A", *fields)

    def _raw(self, deadline: float) -> simplefix.FixMessage | None:
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                return msg
            if time.monotonic() > deadline:
                raise AssertionError("no message from the gateway")
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset by the gateway
                data = b""
            if not data:
                return None
            self.parser.append_buffer(data)

    def receive(self, timeout: float | None = None) -> simplefix.FixMessage | None:
        """The next message in sequence (session housekeeping answered and skipped), or
        None when the gateway closed the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            while self.expected in self._done:
                self._done.discard(self.expected)
                self.expected += 1
            if self.expected in self._held:
                msg = self._held.pop(self.expected)
                self.expected += 1
                if self._handle_admin(msg):
                    continue
                return msg
            msg = self._raw(deadline)
            if msg is None:
                return None
            seq = int(msg.get(34))
            if msg.get(35) == b"4":  # SequenceReset: the gap up to NewSeqNo is filled
                new = int(msg.get(36))
                if new > self.expected:
                    self.expected = new
                continue
            if seq < self.expected or seq in self._done:
                if msg.get(43) == b"Y":
                    continue  # a repeat of what we have
                if msg.get(35) == b"5":
                    return msg  # a Logout (e.g. "MsgSeqNum too low") says why
                raise AssertionError(f"sequence number {seq} below the expected {self.expected}")
            if seq > self.expected:
                if msg.get(35) in (b"A", b"5"):  # answered at once, the gap asked for
                    self._done.add(seq)
                else:
                    self._held[seq] = msg
                if not self._asked_resend:
                    self._asked_resend = True
                    self.send("2", (7, str(self.expected)), (16, "0"))
                if msg.get(35) in (b"A", b"5"):
                    return msg
                continue
            self.expected += 1
            if self._handle_admin(msg):
                continue
            return msg

    def _handle_admin(self, msg: simplefix.FixMessage) -> bool:
        kind = msg.get(35)
        if kind == b"1":
            self.send("0", (112, msg.get(112).decode()))
        elif kind == b"2":  # resend what we kept, fill the gaps between with GapFills
            begin, end = int(msg.get(7)), int(msg.get(16)) or self.seq
            for seq in range(begin, min(end, self.seq) + 1):
                if seq in self._kept:
                    msg_type, fields = self._kept[seq]
                    self._write(msg_type, seq, fields, header=[(43, "Y"), (122, now())])
                else:
                    self._write("4", seq, [(123, "Y"), (36, str(seq + 1))], header=[(43, "Y")])
        return kind in SESSION_ADMIN

    def close(self) -> None:
        self.sock.close()
