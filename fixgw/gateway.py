"""The order-entry gateway (``oms fixgw``): a FIX 4.4 acceptor for the OMS's clients.

Sessions are ``FixSession`` rows (read at start). A Logon must carry the user's name in
Username (553) and their API token in Password (554); the token is checked by the API's own
token authentication, so a revoked token or a deactivated user cannot log on over FIX
either. A refused Logon is answered with a Logout whose Text (58) says why (QuickFIX sends
it for ``RejectLogon``); a Logon for CompIDs that are no session is dropped by the engine,
as the FIX session rules require.

Not yet here (issue 17): orders. Application messages are answered with a
BusinessMessageReject (Unsupported Message Type) until NewOrderSingle, OrderCancelRequest,
OrderCancelReplaceRequest and OrderStatusRequest become engine commands.
"""

from __future__ import annotations

from pathlib import Path

import quickfix as fix
from django.conf import settings
from django.db import close_old_connections
from rest_framework.exceptions import AuthenticationFailed

from fixgw.engine import Acceptor, AcceptorConfig, SessionKey, serve
from fixgw.models import FixSession
from omsweb.token_auth import TokenAuthentication

USERNAME, PASSWORD = 553, 554


def _field(message: fix.Message, tag: int) -> str | None:
    return str(message.getField(tag)) if message.isSetField(tag) else None


def authenticate_logon(message: fix.Message, session_id: fix.SessionID) -> None:
    """Accept the Logon or raise ``RejectLogon`` with the reason (sent as Text)."""
    close_old_connections()
    ours, theirs = session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue()
    row = (
        FixSession.objects.select_related("user")
        .filter(sender_comp_id=theirs, target_comp_id=ours)
        .first()
    )
    if row is None or not row.enabled:
        raise fix.RejectLogon(f"session {theirs}->{ours} is disabled")
    username, token = _field(message, USERNAME), _field(message, PASSWORD)
    if not username:
        raise fix.RejectLogon("Logon must carry the user name in Username (553)")
    if not token:
        raise fix.RejectLogon("Logon must carry the user's API token in Password (554)")
    try:
        user, _ = TokenAuthentication().authenticate_credentials(token)
    except AuthenticationFailed as error:
        raise fix.RejectLogon(f"Password (554): {error.detail}") from None
    if user.pk != row.user_id or user.get_username() != username:
        raise fix.RejectLogon(f"Username (553) {username!r} does not match this session's user")


class Gateway(fix.Application):  # type: ignore[misc]
    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        pass

    def onLogout(self, session_id: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if message.getHeader().getField(fix.MsgType().getField()) == fix.MsgType_Logon:
            authenticate_logon(message, session_id)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        raise fix.UnsupportedMessageType()


def sessions() -> tuple[SessionKey, ...]:
    """Every session row, from the gateway's side (ours first)."""
    rows = FixSession.objects.order_by("pk").values_list("target_comp_id", "sender_comp_id")
    return tuple(SessionKey(ours, theirs) for ours, theirs in rows)


def main(*, host: str, port: int, home: Path) -> None:
    keys = sessions()
    if not keys:
        # idle rather than exit: the process manager would restart an exiting gateway
        # until it gave up, and mark the whole OMS degraded for a gateway nobody uses
        print("no FIX sessions: add one in the admin (FIX gateway > Fix sessions), then restart")
        serve(None)
        return
    config = AcceptorConfig(
        port=port, host=host, store_dir=home / "fix" / "store", log_dir=home / "fix" / "log",
        sessions=keys,
    )  # fmt: skip
    print(f"FIX gateway on {host}:{port}, {len(keys)} session(s), {settings.FIX_COMP_ID}")
    serve(Acceptor(Gateway(), config))
