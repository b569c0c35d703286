"""The FIX acceptance suite's application: ``python -m fixgw.reflector --port P --store DIR``.

Runs our acceptor (``fixgw/engine.py``) with the behaviour of upstream's test application
(``src/at_application.py``), so the session layer can be held to the 59 FIX 4.4 acceptance
scripts (tests/fixgw/test_acceptance.py): a NewOrderSingle is echoed back, except a
PossResend repeat of a ClOrdID already seen on the session (forgotten at logout); a
SecurityDefinition is echoed back; any other application message gets a
BusinessMessageReject (QuickFIX sends it for ``UnsupportedMessageType``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import quickfix as fix

from fixgw.engine import Acceptor, AcceptorConfig, SessionKey, serve

# upstream's acceptance sessions: we are ISLD, the test client is TW (or TW44)
SESSIONS = (SessionKey("ISLD", "TW"), SessionKey("ISLD", "TW44"))


class Reflector(fix.Application):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, set[str]] = {}

    def onCreate(self, session_id: fix.SessionID) -> None:
        self._seen[session_id.toString()] = set()

    def onLogon(self, session_id: fix.SessionID) -> None:
        pass

    def onLogout(self, session_id: fix.SessionID) -> None:
        self._seen[session_id.toString()] = set()

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        msg_type = header.getField(fix.MsgType().getField())
        if msg_type == fix.MsgType_NewOrderSingle:
            cl_ord_id = message.getField(fix.ClOrdID().getField())
            seen = self._seen.setdefault(session_id.toString(), set())
            poss_resend = header.isSetField(fix.PossResend().getField()) and (
                header.getField(fix.PossResend().getField()) == "Y"
            )
            if poss_resend and cl_ord_id in seen:
                return
            seen.add(cl_ord_id)
            fix.Session.sendToTarget(message, session_id)
        elif msg_type == fix.MsgType_SecurityDefinition:
            fix.Session.sendToTarget(message, session_id)
        else:
            raise fix.UnsupportedMessageType()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fixgw.reflector")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args(argv)
    config = AcceptorConfig(
        port=args.port,
        store_dir=args.store,
        log_dir=args.log,
        sessions=SESSIONS,
        # every script starts its sessions at sequence number 1
        reset_on_disconnect=True,
    )
    serve(Acceptor(Reflector(), config))


if __name__ == "__main__":
    main()
