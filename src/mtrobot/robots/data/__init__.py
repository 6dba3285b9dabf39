"""Bundled price data for backtests (see :mod:`mtrobot.robots.backtest.bundled` for its provenance)."""
