"""A runner for QuickFIX's FIX 4.4 session acceptance scripts (../shared/fix-acceptance/).

Script format (its README): ``iCONNECT`` / ``i1,CONNECT`` open a connection (numbered when a
case uses several), ``I<msg>`` sends, ``E<msg>`` expects the acceptor's next message,
``eDISCONNECT`` expects the acceptor to close, ``iDISCONNECT`` closes ours. The runner fills
in BodyLength and CheckSum where a sent message lacks them and replaces ``<TIME±n>``.
Expected messages are compared field by field: BeginString, MsgType and the body in order,
the other header fields as a set (FIX fixes only the first three and the last), values of
the tags in ``fields.fmt`` by their regular expression (a SendingTime with milliseconds is
allowed), BodyLength and CheckSum by checking the received message's own.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

SOH = "\x01"
# header tags of FIX 4.4 (standard header), compared as a set
HEADER_TAGS = {
    "8", "9", "35", "49", "56", "115", "128", "90", "91", "34", "50", "142", "57", "143",
    "116", "144", "129", "145", "43", "97", "52", "122", "212", "213", "347", "369", "627",
}  # fmt: skip
FRAME = re.compile(rb"8=[^\x01]*\x019=(\d+)\x01")


class CaseFailed(AssertionError):
    pass


def load_formats(path: Path) -> dict[str, re.Pattern[str]]:
    formats = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            tag, pattern = line.split("=", 1)
            formats[tag] = re.compile(rf"(?:{pattern})(?:\.\d{{3}})?")
    return formats


def _time(match: re.Match[str]) -> str:
    offset = int(match.group(1) or 0)
    return (datetime.now(UTC) + timedelta(seconds=offset)).strftime("%Y%m%d-%H:%M:%S")


def outgoing(text: str) -> bytes:
    """The bytes to send for an ``I`` line: times filled in, BodyLength/CheckSum if missing."""
    text = re.sub(r"<TIME([+-]\d+)?>", _time, text)
    fields = [f for f in text.split(SOH) if f]
    if len(fields) < 2 or not fields[1].startswith("9="):
        # a script's own (wrong) CheckSum is kept, and it is no part of the body
        end = -1 if fields[-1].startswith("10=") else len(fields)
        body = SOH.join(fields[1:end]) + SOH
        fields.insert(1, f"9={len(body.encode())}")
    raw = SOH.join(fields) + SOH
    if not fields[-1].startswith("10="):
        raw += f"10={sum(raw.encode()) % 256:03d}{SOH}"
    return raw.encode()


def _pairs(raw: str) -> list[tuple[str, str]]:
    return [tuple(f.split("=", 1)) for f in raw.split(SOH) if f]  # type: ignore[misc]


@dataclass
class Connection:
    sock: socket.socket
    buffer: bytes = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, timeout: float) -> bytes | None:
        """The next whole message, or None when the acceptor closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            frame = FRAME.search(self.buffer)
            if frame:
                end = frame.end() + int(frame.group(1))
                trailer = self.buffer.find(b"\x01", end)
                if trailer != -1:
                    message = self.buffer[frame.start() : trailer + 1]
                    self.buffer = self.buffer[trailer + 1 :]
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CaseFailed(f"nothing received in {timeout:.0f}s (buffer {self.buffer!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except TimeoutError:
                continue
            if not chunk:
                if self.buffer.strip():
                    raise CaseFailed(f"closed with a partial message {self.buffer!r}")
                return None
            self.buffer += chunk


def check_frame(raw: bytes) -> None:
    """The received message's own BodyLength and CheckSum are right."""
    frame = FRAME.match(raw)
    assert frame is not None
    body_end = raw.rindex(b"\x0110=") + 1
    if body_end - frame.end() != int(frame.group(1)):
        raise CaseFailed(f"BodyLength {frame.group(1).decode()} is wrong in {raw!r}")
    checksum = int(raw[body_end + 3 : -1])
    if checksum != sum(raw[:body_end]) % 256:
        raise CaseFailed(f"CheckSum {checksum} is wrong in {raw!r}")


def compare(expected: str, raw: bytes, formats: dict[str, re.Pattern[str]]) -> None:
    actual = [p for p in _pairs(raw.decode()) if p[0] not in ("9", "10")]
    wanted = [p for p in _pairs(expected) if p[0] not in ("9", "10")]

    def split(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], ...]:
        head = pairs[:2]  # BeginString, MsgType (after dropping BodyLength)
        rest = pairs[2:]
        header = sorted(p for p in rest if p[0] in HEADER_TAGS)
        body = [p for p in rest if p[0] not in HEADER_TAGS]
        return head, header, body

    mismatch = CaseFailed(f"expected {expected!r}\n     got {raw.decode()!r}")
    for want_part, got_part in zip(split(wanted), split(actual), strict=True):
        if len(want_part) != len(got_part):
            raise mismatch
        for (want_tag, want_value), (got_tag, got_value) in zip(want_part, got_part, strict=True):
            if want_tag != got_tag:
                raise mismatch
            pattern = formats.get(want_tag)
            ok = pattern.fullmatch(got_value) if pattern else want_value == got_value
            if not ok:
                raise mismatch


@dataclass
class Case:
    path: Path
    formats: dict[str, re.Pattern[str]]
    port: int
    timeout: float = 10.0
    connections: dict[str, Connection] = field(default_factory=dict)

    def run(self) -> None:
        try:
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip() or line.startswith("#"):
                    continue
                try:
                    self.step(line)
                except CaseFailed as error:
                    raise CaseFailed(f"{self.path.name}:{number}: {error}") from None
        finally:
            for conn in self.connections.values():
                conn.sock.close()

    def step(self, line: str) -> None:
        action, rest = line[0], line[1:]
        name = "1"
        match = re.match(r"(\d+),(.*)", rest, re.S)
        if match:
            name, rest = match.group(1), match.group(2)
        if action == "i" and rest == "CONNECT":
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.connections[name] = Connection(sock)
        elif action == "i" and rest == "DISCONNECT":
            self.connections.pop(name).sock.close()
        elif action == "I":
            self.connections[name].send(outgoing(rest))
        elif action == "e" and rest == "DISCONNECT":
            raw = self.connections[name].receive(self.timeout)
            if raw is not None:
                raise CaseFailed(f"expected a disconnect, got {raw.decode()!r}")
        elif action == "E":
            raw = self.connections[name].receive(self.timeout)
            if raw is None:
                raise CaseFailed(f"disconnected, expected {rest!r}")
            check_frame(raw)
            compare(rest, raw, self.formats)
        else:
            raise CaseFailed(f"unknown script line {line!r}")
