"""The ``executions`` table: one row per fill, in chDB (embedded, default) or a ClickHouse server.

Both backends use the same schema, created if missing. The table is a ReplacingMergeTree ordered by
``(account, deal)``, and a writer checks for the deal before inserting, so writing a fill again after a
crash (the connector's outbox replays it) never adds a second row; reads use ``FINAL`` to be exact.

chDB keeps one embedded server per *process*, bound to one directory: :func:`open_executions` hands out one
shared :class:`ChdbExecutions` per process and refuses a second, different directory with a clear error.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

from mtrobot.core.events import Fill
from mtrobot.settings import Settings

TABLE = "executions"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("account", "LowCardinality(String)"),
    ("order_id", "String"),
    ("symbol", "LowCardinality(String)"),
    ("side", "LowCardinality(String)"),
    ("ticket", "UInt64"),
    ("deal", "UInt64"),
    ("position", "UInt64"),
    ("volume", "Float64"),
    ("price", "Float64"),
    ("requested_volume", "Float64"),
    ("remaining_volume", "Float64"),
    ("partial", "Bool"),
    ("commission", "Float64"),
    ("swap", "Float64"),
    ("profit", "Float64"),
    ("retcode", "Int32"),
    ("broker_time", "DateTime64(3, 'UTC')"),
    ("latency_ms", "Float64"),
)
CREATE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ", recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)"
    + ") ENGINE = ReplacingMergeTree ORDER BY (account, deal)"
)


def _row(fill: Fill) -> dict[str, Any]:
    row = fill.model_dump(mode="json", include={name for name, _ in COLUMNS})
    row["broker_time"] = fill.broker_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return row


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ExecutionsStore(Protocol):
    """Where fills are kept for analytics. Inserting the same deal twice keeps one row."""

    def insert(self, fill: Fill) -> bool: ...

    def count(self, account: str, order_id: str | None = None) -> int: ...

    def rows(self, account: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class ChdbExecutions:
    """chDB in ``directory``. One per process (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        from chdb import session

        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self._lock = threading.Lock()
        self._session: Any = session.Session(str(directory))  # type: ignore[no-untyped-call]
        self._query(CREATE_SQL)

    def _query(self, sql: str, fmt: str = "CSV") -> str:
        with self._lock:
            return str(self._session.query(sql, fmt))

    def insert(self, fill: Fill) -> bool:
        """Insert the fill's row unless its deal is already there; True if a row was written."""
        where = f"account = {_quote(fill.account)} AND deal = {int(fill.deal)}"
        if int(self._query(f"SELECT count() FROM {TABLE} WHERE {where}").strip() or 0):  # noqa: S608
            return False
        self._query(f"INSERT INTO {TABLE} FORMAT JSONEachRow {json.dumps(_row(fill))}")
        return True

    def count(self, account: str, order_id: str | None = None) -> int:
        where = f"account = {_quote(account)}"
        if order_id is not None:
            where += f" AND order_id = {_quote(order_id)}"
        return int(self._query(f"SELECT count() FROM {TABLE} FINAL WHERE {where}").strip() or 0)  # noqa: S608

    def rows(self, account: str) -> list[dict[str, Any]]:
        out = self._query(
            f"SELECT * FROM {TABLE} FINAL WHERE account = {_quote(account)} ORDER BY deal",  # noqa: S608
            "JSONEachRow",
        )
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def close(self) -> None:
        global _shared
        with _shared_lock:
            if _shared is self:
                _shared = None
            with self._lock:
                self._session.close()


class ClickHouseExecutions:
    """A ClickHouse server through clickhouse-connect (``MTROBOT_CLICKHOUSE_URL``)."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(dsn=url, connect_timeout=5, send_receive_timeout=30)
        self._lock = threading.Lock()
        self._client.command(CREATE_SQL)

    def insert(self, fill: Fill) -> bool:
        with self._lock:
            found = self._client.query(
                f"SELECT count() FROM {TABLE} WHERE account = %(a)s AND deal = %(d)s",  # noqa: S608
                parameters={"a": fill.account, "d": fill.deal},
            ).result_rows[0][0]
            if found:
                return False
            row = fill.model_dump(include={name for name, _ in COLUMNS})
            names = [name for name, _ in COLUMNS]
            self._client.insert(TABLE, [[row[n] for n in names]], column_names=names)
        return True

    def count(self, account: str, order_id: str | None = None) -> int:
        sql = f"SELECT count() FROM {TABLE} FINAL WHERE account = %(a)s"  # noqa: S608
        params: dict[str, Any] = {"a": account}
        if order_id is not None:
            sql += " AND order_id = %(o)s"
            params["o"] = order_id
        with self._lock:
            return int(self._client.query(sql, parameters=params).result_rows[0][0])

    def rows(self, account: str) -> list[dict[str, Any]]:
        with self._lock:
            result = self._client.query(
                f"SELECT * FROM {TABLE} FINAL WHERE account = %(a)s ORDER BY deal",  # noqa: S608
                parameters={"a": account},
            )
        return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]

    def close(self) -> None:
        with self._lock:
            self._client.close()


_shared: ChdbExecutions | None = None
_shared_lock = threading.Lock()


def open_executions(settings: Settings) -> ExecutionsStore:
    """The store the settings ask for: a ClickHouse server if ``clickhouse_url`` is set, else chDB."""
    global _shared
    if settings.clickhouse_url:
        return ClickHouseExecutions(settings.clickhouse_url)
    directory = settings.chdb_dir.resolve()
    with _shared_lock:
        if _shared is not None:
            if _shared.directory != directory:
                raise RuntimeError(
                    f"chDB is already open on {_shared.directory} in this process; "
                    f"one process can hold one chDB directory (asked for {directory})"
                )
            return _shared
        _shared = ChdbExecutions(directory)
        return _shared
