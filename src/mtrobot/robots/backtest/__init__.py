"""Backtests on the simulator's virtual clock and MT5 semantics: ``mtrobot backtest`` (docs/robots.md)."""
