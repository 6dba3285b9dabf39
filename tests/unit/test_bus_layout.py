"""The bus layout, asserted exactly: a change that widens any identity's permissions or an account's
imports and exports fails here, on purpose. Widen one only with a reason in docs/security.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtrobot.bus import jwt, layout
from mtrobot.bus.authority import Trust

JS = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>"]
AGENT_OWNED = [
    "broker.>",
    "audit.broker.>",
    "snapshot.>",
    "agent.heartbeat.>",
    "robots.event.>",
    "reconcile.report.>",
    "bus.probe.>",
    "$KV.account_snapshots.>",
]
HUB, REG = "$KV.central_hub.>", "$KV.service_registry.>"

SERVICES = {
    "web": {
        "pub": {"allow": [*JS, HUB, REG, "orders.submitted.>", "agent.control.*"], "deny": AGENT_OWNED},
        "sub": {
            "allow": [
                "_INBOX_web.>",
                "broker.*.*.*",
                "snapshot.*",
                "robots.event.*",
                "reconcile.report.*",
                "agent.heartbeat.*",
            ]
        },
    },
    "hub": {
        "pub": {"allow": [*JS, HUB, REG], "deny": AGENT_OWNED},
        "sub": {"allow": ["_INBOX_hub.>"]},
    },
    "recorder": {
        "pub": {"allow": [*JS, REG], "deny": AGENT_OWNED},
        "sub": {"allow": ["_INBOX_recorder.>", "broker.*.*.*", "audit.broker.*"]},
    },
    "supervisor": {
        "pub": {"allow": [*JS, HUB, REG, "agent.control.*"], "deny": AGENT_OWNED},
        "sub": {
            "allow": [
                "_INBOX_supervisor.>",
                "agent.heartbeat.*",
                "snapshot.*",
                "robots.event.*",
                "orders.submitted.>",
                "bus.probe.*",
            ]
        },
    },
    "launcher": {
        "pub": {"allow": [*JS, HUB, REG], "deny": AGENT_OWNED},
        "sub": {"allow": ["_INBOX_launcher.>", "bus.probe.*"]},
    },
    "admin": {
        "pub": {"allow": [">"], "deny": AGENT_OWNED},
        "sub": {"allow": [">"]},
        "resp": {"max": 1, "ttl": 0},
    },
}

AGENT_IMPORTS = [  # (subject at the platform, local subject in the agent's account)
    ("$JS.API.CONSUMER.INFO.ORDERS.connector_bob", "$JS.platform.API.CONSUMER.INFO.ORDERS.connector_bob"),
    (
        "$JS.API.CONSUMER.MSG.NEXT.ORDERS.connector_bob",
        "$JS.platform.API.CONSUMER.MSG.NEXT.ORDERS.connector_bob",
    ),
    ("$JS.ACK.ORDERS.connector_bob.>", "$JS.ACK.ORDERS.connector_bob.>"),
    (
        "$JS.API.CONSUMER.RESET.ORDERS.connector_bob",
        "$JS.platform.API.CONSUMER.RESET.ORDERS.connector_bob",
    ),
    ("orders.submitted.bob.>", "orders.submitted.bob.>"),
    ("audit.broker.bob", "audit.broker.bob"),
    ("deadletter.orders.bob", "deadletter.orders.bob"),
    ("$KV.account_snapshots.bob", "$KV.account_snapshots.bob"),
    (
        "$JS.API.DIRECT.GET.KV_account_snapshots.$KV.account_snapshots.bob",
        "$JS.platform.API.DIRECT.GET.KV_account_snapshots.$KV.account_snapshots.bob",
    ),
    (
        "$JS.API.DIRECT.GET.KV_central_hub.$KV.central_hub.connector.bob",
        "$JS.platform.API.DIRECT.GET.KV_central_hub.$KV.central_hub.connector.bob",
    ),
    (
        "$JS.API.DIRECT.GET.KV_central_hub.$KV.central_hub.portfolio.bob",
        "$JS.platform.API.DIRECT.GET.KV_central_hub.$KV.central_hub.portfolio.bob",
    ),
    ("$KV.service_registry.connector.bob.*", "$KV.service_registry.connector.bob.*"),
]
AGENT_STREAM_IMPORTS = ["hub.stored.connector.bob", "hub.stored.portfolio.bob"]
AGENT_EXPORTS = [
    ("broker.*.bob.>", "stream"),
    ("snapshot.bob", "stream"),
    ("agent.heartbeat.bob", "stream"),
    ("robots.event.bob", "stream"),
    ("reconcile.report.bob", "stream"),
    ("bus.probe.bob", "stream"),
    ("agent.control.bob", "service"),
]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_identity_has_exactly_its_permissions(service: str) -> None:
    claims = layout.user_claims(layout.service_permissions(service))
    assert {k: v for k, v in claims.items() if k in ("pub", "sub", "resp")} == SERVICES[service]


def test_an_unknown_service_has_no_identity() -> None:
    with pytest.raises(ValueError, match="no bus identity"):
        layout.service_permissions("connector")


def test_the_agent_user_reaches_only_its_own_subjects() -> None:
    claims = layout.user_claims(layout.agent_permissions("bob"))
    assert claims["pub"] == {
        "allow": [local for _, local in AGENT_IMPORTS]
        + [
            "broker.*.bob.>",
            "snapshot.bob",
            "agent.heartbeat.bob",
            "robots.event.bob",
            "reconcile.report.bob",
            "bus.probe.bob",
        ]
    }
    assert claims["sub"] == {
        "allow": ["_INBOX_agent_bob.>", "agent.control.bob", "broker.*.bob.>", *AGENT_STREAM_IMPORTS]
    }
    assert claims["resp"] == {"max": 1, "ttl": 0}
    assert layout.agent_inbox_prefix("bob") == "_INBOX_agent_bob"


def test_until_agents_have_accounts_of_their_own_an_agent_user_is_confined_to_its_subjects() -> None:
    claims = layout.user_claims(layout.platform_agent_permissions("bob"))
    assert claims["pub"] == {
        "allow": [
            "$JS.API.INFO",
            "$JS.API.STREAM.INFO.ORDERS",
            "$JS.API.STREAM.INFO.BROKER_COMMUNICATION_LOG",
            "$JS.API.STREAM.INFO.ORDERS_DEAD_LETTER",
            "$JS.API.STREAM.INFO.FILLS",
            "$JS.API.STREAM.INFO.KV_central_hub",
            "$JS.API.STREAM.INFO.KV_service_registry",
            "$JS.API.CONSUMER.INFO.ORDERS.connector_bob",
            "$JS.API.CONSUMER.MSG.NEXT.ORDERS.connector_bob",
            "$JS.ACK.ORDERS.connector_bob.>",
            "$JS.API.CONSUMER.RESET.ORDERS.connector_bob",
            "$JS.API.CONSUMER.CREATE.KV_central_hub",
            "$JS.API.CONSUMER.CREATE.KV_central_hub.>",
            "$JS.API.CONSUMER.INFO.KV_central_hub.*",
            "$JS.API.CONSUMER.DELETE.KV_central_hub.*",
            "$JS.API.DIRECT.GET.KV_central_hub.>",
            "$JS.API.STREAM.MSG.GET.KV_central_hub",
            "$JS.FC.KV_central_hub.>",
            "$JS.API.STREAM.INFO.KV_account_snapshots",
            "$JS.API.DIRECT.GET.KV_account_snapshots.$KV.account_snapshots.bob",
            "$KV.service_registry.connector.bob.*",
            "$KV.account_snapshots.bob",
            "orders.submitted.bob.>",
            "audit.broker.bob",
            "deadletter.orders.bob",
            "broker.*.bob.>",
            "snapshot.bob",
            "agent.heartbeat.bob",
            "robots.event.bob",
            "reconcile.report.bob",
            "bus.probe.bob",
        ]
    }
    assert claims["sub"] == {"allow": ["_INBOX_agent_bob.>", "agent.control.bob", "broker.*.bob.>"]}


def test_the_agent_account_imports_and_exports_only_its_own(tmp_path: Path) -> None:
    trust = Trust(tmp_path / "auth")
    claims = jwt.decode_claims(trust.agent_jwt("bob"))["nats"]
    services = [i for i in claims["imports"] if i["type"] == "service"]
    assert [(i["subject"], i.get("local_subject")) for i in services] == AGENT_IMPORTS
    streams = [i["subject"] for i in claims["imports"] if i["type"] == "stream"]
    assert streams == AGENT_STREAM_IMPORTS
    assert {i["account"] for i in claims["imports"]} == {trust.platform.public}
    assert len(claims["imports"]) == len(services) + len(streams)
    assert [(e["subject"], e["type"]) for e in claims["exports"]] == AGENT_EXPORTS
    assert claims["limits"]["disk_storage"] == 0 and claims["limits"]["mem_storage"] == 0  # no JetStream
    assert claims["limits"]["leaf"] == 0
    assert set(claims["mappings"]) == {s for s, local in AGENT_IMPORTS if s != local}


def test_the_platform_imports_each_agent_subjects_from_that_agent_only(tmp_path: Path) -> None:
    trust = Trust(tmp_path / "auth")
    keys = {a: trust.agent_key(a).public for a in ("alice", "bob")}
    claims = jwt.decode_claims(trust.platform_jwt())["nats"]
    imports = {(i["subject"], i["account"], i["type"]) for i in claims["imports"]}
    expected = set()
    for account, key in keys.items():
        for subject, kind in AGENT_EXPORTS:
            expected.add((subject.replace("bob", account), key, kind))
    assert imports == expected
    assert [(e["subject"], e["type"], e.get("response_type")) for e in claims["exports"]] == [
        ("$JS.API.CONSUMER.INFO.ORDERS.*", "service", "Singleton"),
        ("$JS.API.CONSUMER.MSG.NEXT.ORDERS.*", "service", "Stream"),
        ("$JS.ACK.ORDERS.*.>", "service", "Singleton"),
        ("$JS.API.CONSUMER.RESET.ORDERS.*", "service", "Singleton"),
        ("orders.submitted.*.>", "service", "Singleton"),
        ("audit.broker.*", "service", "Singleton"),
        ("deadletter.orders.*", "service", "Singleton"),
        ("$KV.account_snapshots.*", "service", "Singleton"),
        ("$JS.API.DIRECT.GET.KV_account_snapshots.$KV.account_snapshots.*", "service", "Singleton"),
        ("$JS.API.DIRECT.GET.KV_central_hub.$KV.central_hub.*.*", "service", "Singleton"),
        ("$KV.service_registry.connector.*.*", "service", "Singleton"),
        ("hub.stored.*.*", "stream", None),
    ]
    assert claims["limits"]["disk_storage"] == -1


def test_keys_are_kept_secret_and_stable(tmp_path: Path) -> None:
    import stat

    first = Trust(tmp_path / "auth")
    again = Trust(tmp_path / "auth")
    assert first.platform.public == again.platform.public  # JetStream keeps streams under this key
    for seed in (tmp_path / "auth").glob("*.nk"):
        assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "auth").stat().st_mode) == 0o700


def test_an_account_id_that_is_not_a_subject_token_is_refused() -> None:
    for bad in ("a.b", "a*", ">", "A B", ""):
        with pytest.raises(ValueError, match="account id"):
            layout.agent_permissions(bad)


def test_the_sender_of_an_agent_owned_subject_is_the_account_it_names() -> None:
    from mtrobot.bus import subjects

    for subject in (
        "broker.fill.bob.EURUSD",
        "broker.order.bob.US500_cash",
        "snapshot.bob",
        "robots.event.bob",
        "reconcile.report.bob",
        "agent.heartbeat.bob",
        "audit.broker.bob",
    ):
        assert subjects.sender_account(subject) == "bob", subject
    assert subjects.sender_account("orders.submitted.bob.EURUSD") is None
    assert subjects.sender_account("snapshot") is None
