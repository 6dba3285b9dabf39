from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from mtrobot.bus import subjects
from mtrobot.hub.documents import ConfigDocumentError, deep_merge, parse_document, validate_document
from mtrobot.hub.schemas import ConnectorConfig, SchemaRegistry, default_registry, secret_fields_of


def _fields(exc: ConfigDocumentError) -> list[str]:
    return [e.field for e in exc.errors]


def test_the_connector_schema_runs_on_its_defaults_and_has_no_secret_named_field() -> None:
    config = ConnectorConfig()
    assert config.mt5_connection.timeout_seconds == 60.0 and config.mt5_connection.server is None
    assert config.order_settings.validate_before_send is True
    assert secret_fields_of(ConnectorConfig) == []


def test_a_partial_document_is_laid_over_the_safe_defaults() -> None:
    defaults = ConnectorConfig.model_validate({"order_settings": {"max_retries": 1}})
    merged = validate_document(
        "connector.demo", ConnectorConfig, {"mt5_connection": {"timeout_seconds": 30}}, defaults
    )
    assert merged.mt5_connection.timeout_seconds == 30
    assert merged.order_settings.max_retries == 1
    assert merged.error_handling == defaults.error_handling


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"mt5_connection": {"timeout_seconds": "soon"}}, "mt5_connection.timeout_seconds"),
        ({"mt5_connection": {"timeout_seconds": 100000}}, "mt5_connection.timeout_seconds"),
        ({"order_settings": {"max_retries": -1}}, "order_settings.max_retries"),
        ({"mt5_connection": {"backend": "telnet"}}, "mt5_connection.backend"),
        ({"mt5_connection": {"tmeout_seconds": 5}}, "mt5_connection.tmeout_seconds"),
        ({"unknown_section": {}}, "unknown_section"),
        ({"error_handling": {"reconnect_interval_seconds": 60, "max_backoff_seconds": 10}}, "error_handling"),
    ],
)
def test_an_invalid_document_is_refused_naming_the_field(document: dict, field: str) -> None:
    with pytest.raises(ConfigDocumentError) as caught:
        validate_document("connector.demo", ConnectorConfig, document)
    assert field in _fields(caught.value)
    assert field in str(caught.value)


@pytest.mark.parametrize("name", ["password", "api_key", "secret", "auth_token", "MT5_PASSWORD"])
def test_a_document_holding_a_secret_named_field_is_refused_at_any_depth(name: str) -> None:
    document = {"mt5_connection": {"login": 5, name: "hunter2"}}
    with pytest.raises(ConfigDocumentError) as caught:
        validate_document("connector.demo", ConnectorConfig, document)
    assert _fields(caught.value) == [f"mt5_connection.{name}"]
    assert "hunter2" not in str(caught.value)


def test_a_stored_value_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(ConfigDocumentError, match="not valid JSON"):
        parse_document("connector.demo", b"{nope")
    with pytest.raises(ConfigDocumentError, match="JSON object"):
        parse_document("connector.demo", b"[1, 2]")


def test_schemas_are_found_by_the_first_segment_of_the_service_name() -> None:
    registry = default_registry()
    assert registry.schema_for("connector.demo") is ConnectorConfig
    assert registry.schema_for("connector") is ConnectorConfig
    assert registry.schema_for("web") is None


def test_a_schema_with_a_secret_named_field_cannot_be_registered() -> None:
    class Leaky(BaseModel):
        smtp_password: str = ""

    registry = SchemaRegistry()
    with pytest.raises(ValueError, match="smtp_password"):
        registry.register("mailer", Leaky)
    with pytest.raises(ValueError, match="single token"):
        registry.register("a.b", ConnectorConfig)


@pytest.mark.parametrize("name", ["connector.demo", "hub", "web", "connector.acc_1-x"])
def test_service_names_are_dotted_subject_safe_tokens(name: str) -> None:
    assert subjects.hub_config_key(name) == name


@pytest.mark.parametrize("name", ["", "Connector", "a..b", "a.", ".a", "a b", "a.>", "a.*", "a/b"])
def test_a_service_name_that_would_break_a_key_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="service name"):
        subjects.hub_config_key(name)


documents = st.recursive(
    st.dictionaries(st.text("abc", min_size=1, max_size=2), st.integers(), max_size=3),
    lambda inner: st.dictionaries(st.text("abc", min_size=1, max_size=2), inner, max_size=3),
    max_leaves=8,
)


@given(documents, documents)
def test_merging_keeps_every_leaf_of_the_override_and_changes_neither_input(
    base: dict, override: dict
) -> None:
    base_before, override_before = repr(base), repr(override)
    merged = deep_merge(base, override)
    assert (repr(base), repr(override)) == (base_before, override_before)

    def leaves(doc: dict, prefix: tuple = ()) -> dict:
        out = {}
        for k, v in doc.items():
            out.update(leaves(v, (*prefix, k)) if isinstance(v, dict) and v else {(*prefix, k): v})
        return out

    merged_leaves = leaves(merged)
    for path, value in leaves(override).items():
        if value != {}:
            assert merged_leaves[path] == value
