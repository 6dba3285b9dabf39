"""The Kafka mirror of the broker audit log (topic ``broker_communication_log``), through aiokafka."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

AUDIT_TOPIC = "broker_communication_log"


class KafkaAuditMirror:
    """Sends already-redacted AuditRecord JSON to Kafka, keyed by account so one account stays ordered."""

    def __init__(self, bootstrap: str, topic: str = AUDIT_TOPIC, client_id: str = "mtrobot-audit") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self, timeout: float = 10.0) -> None:
        """Connect, creating the topic if the cluster lacks it. Raises on failure; call again later."""
        await asyncio.wait_for(self._ensure_topic(), timeout)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            request_timeout_ms=int(timeout * 1000),
            linger_ms=5,
        )
        try:
            await asyncio.wait_for(producer.start(), timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin")
        await admin.start()
        try:
            if self.topic not in await admin.list_topics():
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()

    async def send(self, key: str, value: bytes, timeout: float = 10.0) -> None:
        """Send one record and wait for the broker's acknowledgement."""
        if self._producer is None:
            raise KafkaError("kafka mirror not started")
        await asyncio.wait_for(self._producer.send_and_wait(self.topic, value, key=key.encode()), timeout)

    async def send_many(self, records: list[tuple[str, bytes]], timeout: float = 10.0) -> None:
        """Send a batch (``(key, value)`` pairs) and wait until the broker acknowledged every one."""
        if self._producer is None:
            raise KafkaError("kafka mirror not started")
        producer = self._producer

        async def _all() -> None:
            futures = [await producer.send(self.topic, value, key=key.encode()) for key, value in records]
            await asyncio.gather(*futures)

        await asyncio.wait_for(_all(), timeout)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)
