from __future__ import annotations

import io
import json
import logging

from pydantic import SecretStr

from mtrobot.logging import REDACTED, configure_logging, get_logger, redact

PASSWORD = "hunter2-Very-Secret"


def test_a_password_never_reaches_the_log_whatever_its_nesting() -> None:
    out = io.StringIO()
    configure_logging(stream=out, service="test")
    get_logger("t").info(
        "login",
        password=PASSWORD,
        request={"login": 123, "credentials": {"Password": PASSWORD}, "list": [{"api_key": PASSWORD}]},
        secret=SecretStr(PASSWORD),
        url=f"nats://user:{PASSWORD}@127.0.0.1:4222",
        token=PASSWORD,
    )
    logging.getLogger("thirdparty").warning("stdlib", extra={"password": PASSWORD})
    text = out.getvalue()
    assert PASSWORD not in text
    event = json.loads(text.splitlines()[0])
    assert event["password"] == REDACTED
    assert event["request"]["login"] == 123
    assert event["request"]["credentials"] == REDACTED
    assert event["request"]["list"][0]["api_key"] == REDACTED


def test_redaction_copies_and_never_mutates() -> None:
    original = {"a": {"password": "x"}}
    assert redact(original) == {"a": {"password": REDACTED}}
    assert original == {"a": {"password": "x"}}


def test_harmless_fields_pass_through() -> None:
    assert redact({"login": 5, "server": "Demo-1", "volume": 0.1}) == {
        "login": 5,
        "server": "Demo-1",
        "volume": 0.1,
    }
