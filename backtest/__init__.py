"""Backtesting: replay recordings through the OMS's own pure rules (DESIGN.md 7c).

``backtest.Strategy`` is the base class of a strategy (``backtest/strategy.py``);
``backtest.runner.run`` runs one; ``oms backtest`` is its command.
"""

from backtest.strategy import Context, Strategy

__all__ = ["Context", "Strategy"]
