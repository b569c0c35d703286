"""Example strategies: ``oms backtest --strategy backtest.examples.<module>:<Class>``."""
