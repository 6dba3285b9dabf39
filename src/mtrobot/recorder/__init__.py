"""The recorder: fills into ClickHouse ``executions`` and the audit log into Kafka, from durable consumers."""
