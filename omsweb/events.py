"""The engine's events, delivered to listeners registered in one place.

Lower layers (the execution engine, the venue guard) emit plain event values here and
never import who reacts; the listeners are named in ``settings.OMS_EVENT_LISTENERS``
(dotted paths of functions taking one event), so the live push, post-trade risk and
anything later (FIX execution reports, venue scores, TCA) plug in without the engine
knowing them. A listener runs synchronously in the emitter's transaction (post-trade
risk must see the fill's); one that only reacts after commit uses
``transaction.on_commit`` itself (the live push does, through ``omsweb.realtime``).

A listener that raises is logged. One that writes to the database does so in a
savepoint of its own (``transaction.atomic()``, as post-trade risk does), so a failed
write never aborts the engine's transaction; ``emit`` adds no savepoint itself, since
most listeners only schedule pushes and a savepoint per event would cost two round
trips on the order path.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[[Any], None]


@functools.cache
def listeners() -> tuple[Listener, ...]:
    from django.conf import settings
    from django.utils.module_loading import import_string

    return tuple(import_string(path) for path in settings.OMS_EVENT_LISTENERS)


def emit(event: Any) -> None:
    """Hand ``event`` to every listener, in the order they are configured."""
    for listener in listeners():
        try:
            listener(event)
        except Exception:
            log.exception(
                "listener %s failed on %s", getattr(listener, "__name__", listener), event
            )
