"""Stand-ins for what cannot run here: the official ``MetaTrader5`` module and an mt5linux bridge server."""
