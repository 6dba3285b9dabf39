"""Contract names written out literally (not imported from mtrobot), so a rename in the code fails a test."""

PROVISIONED_ON_THE_BUS = frozenset(
    {
        "ORDERS",
        "BROKER_COMMUNICATION_LOG",
        "ORDERS_DEAD_LETTER",
        "FILLS",
        "account_snapshots",
        "central_hub",
        "service_registry",
    }
)
