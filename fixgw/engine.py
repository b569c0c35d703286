"""Our thin interface over upstream QuickFIX: settings, the acceptor, its process.

Everything else in the project talks FIX through this module, so the engine could be
swapped by rewriting it alone. Messages are stored with QuickFIX's FileStore (the only store
that survives a restart without a database of QuickFIX's own); sequence numbers continue
across restarts of the process.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import quickfix as fix

BEGIN_STRING = "FIX.4.4"
# the FIX 4.4 data dictionary shipped with the quickfix package (validates every message)
SPEC_FIX44 = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


@dataclass(frozen=True)
class SessionKey:
    """One session as the acceptor sees it: our CompID, the counterparty's CompID."""

    sender_comp_id: str
    target_comp_id: str


@dataclass(frozen=True)
class AcceptorConfig:
    """What an acceptor needs (messages are logged under ``log_dir``, default the store's
    directory); ``reset_on_disconnect`` is for the conformance reflector only
    (the gateway keeps sequence numbers so a client's missed reports are resent);
    ``threaded``: a thread per session (one session's slow message never holds up
    another's), else one thread for all."""

    port: int
    store_dir: Path
    sessions: tuple[SessionKey, ...]
    # TCP_NODELAY: a reply of several messages (or a request followed by another) is not
    # held back by Nagle's algorithm against the peer's delayed ACK
    nodelay: bool = False
    host: str = "127.0.0.1"
    log_dir: Path | None = None
    reset_on_disconnect: bool = False
    threaded: bool = False


def _settings(config: AcceptorConfig) -> fix.SessionSettings:
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", "acceptor")
    defaults.setString("SocketAcceptHost", config.host)
    defaults.setInt("SocketAcceptPort", config.port)
    defaults.setBool("SocketReuseAddress", True)
    defaults.setString("StartTime", "00:00:00")
    defaults.setString("EndTime", "00:00:00")
    defaults.setString("FileStorePath", str(config.store_dir))
    defaults.setString("FileLogPath", str(config.log_dir or config.store_dir))
    defaults.setBool("UseDataDictionary", True)
    defaults.setString("DataDictionary", str(SPEC_FIX44))
    defaults.setBool("ResetOnDisconnect", config.reset_on_disconnect)
    if config.nodelay:
        defaults.setBool("SocketNodelay", True)
    settings = fix.SessionSettings()
    settings.set(defaults)
    for key in config.sessions:
        session = fix.Dictionary()
        session.setString("BeginString", BEGIN_STRING)
        session.setString("SenderCompID", key.sender_comp_id)
        session.setString("TargetCompID", key.target_comp_id)
        settings.set(_session_id(key), session)
    return settings


def _session_id(key: SessionKey) -> fix.SessionID:
    return fix.SessionID(BEGIN_STRING, key.sender_comp_id, key.target_comp_id)


class Acceptor:
    """A QuickFIX socket acceptor for ``application`` with a FileStore under ``store_dir``."""

    def __init__(self, application: fix.Application, config: AcceptorConfig) -> None:
        config.store_dir.mkdir(parents=True, exist_ok=True)
        self._settings = _settings(config)
        self._store = fix.FileStoreFactory(self._settings)
        self._log = fix.FileLogFactory(self._settings)
        kind = fix.ThreadedSocketAcceptor if config.threaded else fix.SocketAcceptor
        self._acceptor = kind(application, self._store, self._settings, self._log)

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        self._acceptor.stop()


def send(message: fix.Message, key: SessionKey | fix.SessionID) -> bool:
    """Queue ``message`` on a session (stored, so it is resent on the next logon if the
    counterparty is away); False when the session does not exist."""
    session_id = _session_id(key) if isinstance(key, SessionKey) else key
    return bool(fix.Session.sendToTarget(message, session_id))


def message(msg_type: str, body: Iterable[tuple[int, str]]) -> fix.Message:
    """A FIX 4.4 message of ``msg_type`` with the body fields ``(tag, text)`` in order;
    an ExecutionReport or OrderCancelReject gets TransactTime (60) now."""
    msg = fix.Message()
    header = msg.getHeader()
    header.setField(fix.BeginString(BEGIN_STRING))
    header.setField(fix.MsgType(msg_type))
    for tag, value in body:
        msg.setField(fix.StringField(tag, value))
    if msg_type in ("8", "9"):
        now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        msg.setField(fix.StringField(60, now))
    return msg


def fields_of(message: fix.Message) -> dict[int, str]:
    """A received message's fields by tag (header and body; the first of a repeated tag)."""
    fields: dict[int, str] = {}
    for part in message.toString().split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            fields.setdefault(int(tag), value)
    return fields


def msg_type(message: fix.Message) -> str:
    return str(message.getHeader().getField(35))


def session_name(session_id: fix.SessionID) -> str:
    """``FIX.4.4:OMS->TRADER``: a session's stable name."""
    return str(session_id.toString())


def serve(acceptor: Acceptor | None, *, ready: Iterable[str] = ("ready",)) -> None:
    """Run ``acceptor`` (None: nothing, idle) until SIGTERM or SIGINT; print ``ready``
    lines once it listens."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if acceptor is not None:
        acceptor.start()
    for line in ready:
        print(line, flush=True)
    try:
        stop.wait()
    finally:
        if acceptor is not None:
            acceptor.stop()


# --- initiators and plain-dict messages (the FIX venue driver and the simulated FIX venue)

# QuickFIX's threads call into Python and wait for the GIL; with Python's default switch
# interval (5 ms) a hop between one of our threads and one of its threads can wait that
# long (docs/FIX.md, "FIX venues", has the figures). The FIX venue's session process and
# the simulator's FIX port set this shorter one (sys.setswitchinterval).
GIL_SWITCH_S = 0.0002

# header and trailer tags: what ``body_of`` leaves out of a message's body
_ENVELOPE = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 97, 122, 369})


@dataclass(frozen=True)
class InitiatorConfig:
    """What an initiator needs: the counterparty's address, one session (ours first),
    the FileStore directory (sequence numbers continue across restarts)."""

    host: str
    port: int
    store_dir: Path
    session: SessionKey
    log_dir: Path | None = None
    heartbeat_s: int = 10
    reconnect_s: int = 2


def _initiator_settings(config: InitiatorConfig) -> fix.SessionSettings:
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", "initiator")
    defaults.setString("StartTime", "00:00:00")
    defaults.setString("EndTime", "00:00:00")
    defaults.setString("FileStorePath", str(config.store_dir))
    defaults.setString("FileLogPath", str(config.log_dir or config.store_dir))
    defaults.setBool("UseDataDictionary", True)
    defaults.setString("DataDictionary", str(SPEC_FIX44))
    defaults.setInt("ReconnectInterval", config.reconnect_s)
    defaults.setBool("SocketNodelay", True)  # requests go out in pairs (D then H)
    settings = fix.SessionSettings()
    settings.set(defaults)
    session = fix.Dictionary()
    session.setString("BeginString", BEGIN_STRING)
    session.setString("SenderCompID", config.session.sender_comp_id)
    session.setString("TargetCompID", config.session.target_comp_id)
    session.setString("SocketConnectHost", config.host)
    session.setInt("SocketConnectPort", config.port)
    session.setInt("HeartBtInt", config.heartbeat_s)
    settings.set(_session_id(config.session), session)
    return settings


class Initiator:
    """A QuickFIX socket initiator for ``application``: connects, logs on, and
    reconnects every ``reconnect_s`` while the counterparty is away."""

    def __init__(self, application: fix.Application, config: InitiatorConfig) -> None:
        config.store_dir.mkdir(parents=True, exist_ok=True)
        self._settings = _initiator_settings(config)
        self._store = fix.FileStoreFactory(self._settings)
        self._log = fix.FileLogFactory(self._settings)
        self._initiator = fix.SocketInitiator(application, self._store, self._settings, self._log)

    def start(self) -> None:
        self._initiator.start()

    def stop(self) -> None:
        self._initiator.stop()


def to_message(msg_type: str, fields: dict[str, str]) -> fix.Message:
    """A message of type ``msg_type`` with body ``fields`` ({tag: value}, tags as
    strings or ints); the session adds the header's CompIDs and sequence number."""
    message = fix.Message()
    message.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields.items():
        message.setField(fix.StringField(int(tag), str(value)))
    return message


def body_of(message: fix.Message) -> dict[str, str]:
    """The body of ``message`` as {tag: value}, tags as strings (the shape
    ``to_message`` takes; no repeating groups)."""
    out: dict[str, str] = {}
    for part in message.toString().split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit() and int(tag) not in _ENVELOPE:
            out[tag] = value
    return out


def header_field(message: fix.Message, tag: int) -> str | None:
    header = message.getHeader()
    return str(header.getField(tag)) if header.isSetField(tag) else None
