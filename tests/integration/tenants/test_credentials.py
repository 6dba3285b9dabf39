"""Credentials at rest: never plaintext in the database, bound to their account, usable after rotation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from mtrobot.settings import Settings
from mtrobot.storage import accounts as account_repo
from mtrobot.storage.db import make_engine, session_factory
from mtrobot.vault import Vault, VaultError, load_keyring
from mtrobot.web.credentials import rotate_master_key, sealed_of
from tests.e2e.proc_tools import mtrobot_command
from tests.integration.tenants.conftest import register, seed_account, state_of

PASSWORDS = ["Plain-Text-Needle-1", "Plain-Text-Needle-2", "Plain-Text-Needle-3"]


def dump_database(settings: Settings) -> bytes:
    """Everything the database holds, as an attacker with a copy would see it."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    out = subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", str(url.database),
         "--schema", str(url.query["options"]).split("=", 1)[1]],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout


def test_the_database_holds_no_password_in_plaintext(client: TestClient, settings: Settings) -> None:
    trader = register(client)
    state = state_of(client)
    for password in PASSWORDS:
        seed_account(state, trader.id, password)
    state.engine.dispose()  # flush SQLite's WAL into the files we read
    dump = dump_database(settings)
    assert len(dump) > 1000
    for password in [*PASSWORDS, "correct horse battery"]:
        assert password.encode() not in dump
        assert password.encode("utf-16-le") not in dump


def test_a_ciphertext_swapped_between_two_accounts_rows_fails_to_decrypt(client: TestClient) -> None:
    trader = register(client)
    state = state_of(client)
    a, b = seed_account(state, trader.id, PASSWORDS[0]), seed_account(state, trader.id, PASSWORDS[1])
    with state.sessions.begin() as db:
        row_a, row_b = account_repo.account_by_id(db, a), account_repo.account_by_id(db, b)
        assert row_a and row_b
        for col in ("cred_key_id", "cred_wrapped_key", "cred_nonce", "cred_ciphertext"):
            va, vb = getattr(row_a, col), getattr(row_b, col)
            setattr(row_a, col, vb)
            setattr(row_b, col, va)
    with state.sessions() as db:
        for account_id in (a, b):
            row = account_repo.account_by_id(db, account_id)
            assert row is not None
            with pytest.raises(VaultError):
                state.vault.open(account_id, sealed_of(row))


def test_key_rotation_keeps_every_account_usable_and_retires_the_old_key(
    client: TestClient, settings
) -> None:
    trader = register(client)
    state = state_of(client)
    ids = [seed_account(state, trader.id, p) for p in PASSWORDS]
    old_key = state.vault.keyring.current.key_id
    engine = make_engine(settings.resolved_database_url)
    report = rotate_master_key(Vault(load_keyring(settings)), session_factory(engine))
    engine.dispose()
    assert report.rewrapped == 3 and report.retired_key_ids == (old_key,)
    # The running app never restarted: it reads the rotated key file on its own.
    with state.sessions() as db:
        rows = [account_repo.account_by_id(db, i) for i in ids]
    assert {r.cred_key_id for r in rows if r} == {report.new_key_id}
    assert [state.vault.open(r.id, sealed_of(r)) for r in rows if r] == PASSWORDS
    assert old_key not in (settings.data_dir / "master.key").read_text()


def test_the_rotate_command_rewraps_under_a_new_key(client: TestClient, settings: Settings) -> None:
    trader = register(client)
    state = state_of(client)
    account = seed_account(state, trader.id, PASSWORDS[0])
    env = {"PATH": "/usr/bin:/bin", "MTROBOT_DATABASE_URL": settings.resolved_database_url}
    out = subprocess.run(
        [*mtrobot_command("keys", "rotate", "--data-dir", str(settings.data_dir))],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "1 credentials re-wrapped" in out.stdout
    with state.sessions() as db:
        row = account_repo.account_by_id(db, account)
        assert row is not None
        assert state.vault.open(account, sealed_of(row)) == PASSWORDS[0]


def test_a_supervisor_hands_an_agent_its_password_without_seeing_it(client: TestClient) -> None:
    """The supervisor unwraps only the data key; the agent opens the record with it, no master key needed."""
    import dataclasses

    from mtrobot.vault import SealedSecret, open_with_data_key

    trader = register(client)
    state = state_of(client)
    account = seed_account(state, trader.id, PASSWORDS[2])
    with state.sessions() as db:
        row = next(a for a in account_repo.all_accounts(db) if a.id == account)
        record = SealedSecret(**dataclasses.asdict(account_repo.sealed_of(row)))
    data_key = state.vault.unwrap_data_key(record)
    handed_over = record.to_dict()  # what travels to the agent on its standard input, with the data key
    assert PASSWORDS[2] not in str(handed_over)
    assert open_with_data_key(data_key, SealedSecret.from_dict(handed_over), account) == PASSWORDS[2]
