"""The MT5 terminal interface (a Protocol mirroring the ``MetaTrader5`` module), its structures, constants,
retcode meanings, and the backends that implement it (resolved by name in :mod:`mtrobot.broker.backends`)."""
