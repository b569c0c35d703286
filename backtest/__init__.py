"""Backtesting: replay recordings through the OMS's own pure rules (DESIGN.md 7c)."""
