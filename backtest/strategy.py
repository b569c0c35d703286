"""The strategy API: a class deriving from :class:`Strategy`, called back by the engine.

::

    class Buyer(Strategy):
        def on_start(self, ctx):  ...
        def on_book(self, ctx, book):  ...     # a venue's book changed (as the feed shows it)
        def on_trade(self, ctx, trade): ...    # a trade printed at a venue
        def on_order(self, ctx, order): ...    # one of our orders changed status
        def on_fill(self, ctx, fill): ...      # one of our orders filled (partly)
        def on_stop(self, ctx): ...            # the recording ended

``ctx`` is the :class:`Context` the engine gives: ``now`` (epoch seconds, the simulated
clock), ``submit(...) -> client order id``, ``cancel(id)``, ``amend(id, quantity=,
price=)``, ``order(id)``, ``position(symbol)``, ``book(symbol, venue=None)``, and
``params`` (the ``--param k=v`` strings). A strategy sees the market as the venue's feed
delivers it, after the feed latency, and its orders reach the venue after the order
latency: what it sees is what a live strategy of the OMS would see.

Callbacks that are not overridden are not called (so a strategy that ignores the
book costs nothing per book update).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from backtest.model import BookView, Fill, Order, TradeView


class Context(Protocol):
    """What a strategy may do and see (the engine's ``StrategyContext`` implements it)."""

    params: dict[str, str]

    @property
    def now(self) -> float: ...

    @property
    def now_ns(self) -> int: ...

    def submit(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | float,
        price: Decimal | str | float | None = None,
        time_in_force: str = "GTC",
        venue: str | None = None,
        parent: str | None = None,
    ) -> str: ...

    def cancel(self, client_order_id: str) -> bool: ...

    def amend(
        self,
        client_order_id: str,
        quantity: Decimal | str | float | None = None,
        price: Decimal | str | float | None = None,
    ) -> bool: ...

    def order(self, client_order_id: str) -> Order | None: ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    def position(self, symbol: str) -> Decimal: ...

    def book(self, symbol: str, venue: str | None = None) -> BookView | None: ...

    def log(self, message: str) -> None: ...


class Strategy:
    """Base class: override the callbacks you need. ``params`` holds ``--param k=v``."""

    def __init__(self, **params: str) -> None:
        self.params = params

    def on_start(self, ctx: Context) -> None:
        pass

    def on_book(self, ctx: Context, book: BookView) -> None:
        pass

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        pass

    def on_order(self, ctx: Context, order: Order) -> None:
        pass

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        pass

    def on_stop(self, ctx: Context) -> None:
        pass

    # helpers for parameters given as strings
    def param(self, name: str, default: Any) -> Any:
        """``params[name]`` converted to the type of ``default`` (Decimal, int, float, str)."""
        raw = self.params.get(name)
        if raw is None:
            return default
        try:
            if isinstance(default, bool):
                return raw.lower() in ("1", "true", "yes", "on")
            if isinstance(default, Decimal):
                return Decimal(raw)
            return type(default)(raw)
        except (ValueError, ArithmeticError):
            raise StrategyParamError(
                f"--param {name}={raw!r}: expected {type(default).__name__}"
            ) from None


class StrategyParamError(ValueError):
    """A ``--param`` value of the wrong type."""


@dataclass(frozen=True, slots=True)
class StrategyRef:
    """``module:Class`` as given on the command line."""

    module: str
    name: str

    @classmethod
    def parse(cls, text: str) -> StrategyRef:
        module, sep, name = text.partition(":")
        if not sep or not module or not name:
            raise ValueError(
                f"--strategy {text!r}: expected module:Class (e.g. backtest.examples.twap:Twap)"
            )
        return cls(module, name)
