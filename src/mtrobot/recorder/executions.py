"""The ``executions`` table: one row per deal, in chDB (embedded, default) or a ClickHouse server.

One code path for both: ``clickhouse_connect`` speaks to a server by URL (``MTROBOT_CLICKHOUSE_URL``) and to
chDB in the data dir through its ``chdb:///DIR`` DSN. The table is a ReplacingMergeTree ordered by
``(account, deal)``, and the writer leaves out the deals already there before it inserts a batch, so a fill
delivered again after a crash (the bus redelivers what was not acknowledged) never becomes a second row.
Reads use ``FINAL``, so even two writers racing on a server count each deal once.

chDB keeps one embedded engine per *process*, bound to one directory: only the recorder opens it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
NAMES = [name for name, _ in COLUMNS]
CREATE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ", recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)"
    + ") ENGINE = ReplacingMergeTree ORDER BY (account, deal)"
)


def chdb_dsn(directory: Path) -> str:
    return f"chdb:///{directory.resolve()}"


class Executions:
    """The executions table behind one ``clickhouse_connect`` client. Thread-safe (one call at a time)."""

    def __init__(self, dsn: str) -> None:
        import clickhouse_connect

        self.dsn = dsn
        self._lock = threading.Lock()
        timeouts: dict[str, Any] = {}
        if not dsn.startswith("chdb:"):  # chDB has no network to time out on (and says so on stderr)
            timeouts = {"connect_timeout": 5, "send_receive_timeout": 30}
        self._client: Any = clickhouse_connect.get_client(dsn=dsn, **timeouts)
        self._client.command(CREATE_SQL)

    @classmethod
    def open(cls, settings: Settings) -> Executions:
        """A ClickHouse server when ``clickhouse_url`` is set, else chDB in the data dir."""
        if settings.clickhouse_url:
            return cls(settings.clickhouse_url)
        settings.chdb_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(chdb_dsn(settings.chdb_dir))

    def insert_many(self, fills: Iterable[Fill]) -> int:
        """Write the fills whose deal is not in the table yet, in one insert; returns how many were new."""
        fresh: dict[tuple[str, int], Fill] = {}
        for fill in fills:
            fresh.setdefault((fill.account, fill.deal), fill)
        if not fresh:
            return 0
        with self._lock:
            for account, deals in _by_account(fresh).items():
                known = self._client.query(
                    f"SELECT deal FROM {TABLE} WHERE account = %(a)s AND has(%(d)s, deal)",  # noqa: S608
                    parameters={"a": account, "d": deals},
                ).result_rows
                for (deal,) in known:
                    fresh.pop((account, int(deal)), None)
            if fresh:
                rows = [_row(fill) for fill in fresh.values()]
                self._client.insert(TABLE, rows, column_names=NAMES)
        return len(fresh)

    def insert(self, fill: Fill) -> bool:
        return self.insert_many([fill]) == 1

    def count(self, account: str | None = None, order_id: str | None = None) -> int:
        where, params = _where(account, order_id)
        sql = f"SELECT count() FROM {TABLE} FINAL{where}"  # noqa: S608
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


def _row(fill: Fill) -> list[Any]:
    values = fill.model_dump(include=set(NAMES))
    return [values[name] for name in NAMES]


def _by_account(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for account, deal in keys:
        out.setdefault(account, []).append(deal)
    return out


def _where(account: str | None, order_id: str | None) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if account is not None:
        clauses.append("account = %(a)s")
        params["a"] = account
    if order_id is not None:
        clauses.append("order_id = %(o)s")
        params["o"] = order_id
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
