"""The per-account agent: terminal session, connector, robots and the aggregator of the account's state."""
