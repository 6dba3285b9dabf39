"""The module's surface against MT5_REFERENCE.md (tables in tests/unit/mt5/reference.py), no simulator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mtrobot.mt5 as mt5
from tests.unit.mt5 import reference as ref


def test_every_function_of_section_1_and_the_three_helpers_is_a_module_function() -> None:
    missing = [name for name in (*ref.FUNCTIONS, *ref.HELPERS) if not callable(getattr(mt5, name, None))]
    assert missing == []


def test_every_constant_of_sections_4_7_and_8_has_the_reference_value() -> None:
    wrong = {
        name: getattr(mt5, name, "missing")
        for name, value in ref.CONSTANTS.items()
        if getattr(mt5, name, None) != value
    }
    assert wrong == {}
    assert len(ref.CONSTANTS) == 223  # every row of the reference's tables was read


def test_the_module_exports_no_constant_the_reference_does_not_list() -> None:
    extra = [n for n in dir(mt5) if n.isupper() and not n.startswith("_") and n not in ref.CONSTANTS]
    assert extra == []


def test_constants_only_mql5_has_are_not_exported_as_on_the_real_package() -> None:
    assert [name for name in ref.NOT_EXPORTED if hasattr(mt5, name)] == []


def test_the_constants_are_plain_ints() -> None:
    assert all(type(getattr(mt5, name)) is int for name in ref.CONSTANTS)


def test_the_structure_types_are_module_attributes_with_the_reference_fields_in_order() -> None:
    for name, fields in ref.FIELDS.items():
        cls = getattr(mt5, name)
        assert tuple(cls._fields) == fields, name
        assert len(fields) == ref.COUNTS[name], name


def test_a_result_answers_index_attribute_and_asdict_with_the_request_nested() -> None:
    request = mt5.TradeRequest(*([0] * 3), "EURUSD", 0.1, 1.1, 0.0, 0.0, 0.0, 10, 0, 0, 0, 0, "x", 0, 0)
    result = mt5.OrderSendResult(10009, 2, 3, 0.1, 1.1, 1.1, 1.2, "Request executed", 1, 0, request)
    assert result[0] == result.retcode == 10009
    as_dict = result._asdict()
    assert list(as_dict) == list(ref.FIELDS["OrderSendResult"])
    assert as_dict["request"].symbol == "EURUSD"
    assert as_dict["request"]._asdict()["volume"] == 0.1
    assert not hasattr(result, "_replace") and not hasattr(result, "_make")  # not collections.namedtuple
    with pytest.raises(TypeError, match="cannot pickle 'OrderSendResult' object"):
        pickle.dumps(result)  # as the package's C types (MT5_REFERENCE.md section 0)


def test_the_version_strings() -> None:
    assert mt5.__version__ == "5.0.6231"


def test_numpy_dtypes_of_the_reference() -> None:
    from mtrobot.broker.arrays import RATES_DTYPE, TICKS_DTYPE

    assert np.dtype(ref.RATES_DTYPE) == RATES_DTYPE
    assert np.dtype(ref.TICKS_DTYPE) == TICKS_DTYPE


def test_star_import_brings_functions_constants_and_types() -> None:
    namespace: dict[str, object] = {}
    exec("from mtrobot.mt5 import *", namespace)
    for name in (*ref.FUNCTIONS, *ref.HELPERS, "TRADE_ACTION_DEAL", "Tick", "AccountInfo"):
        assert name in namespace, name


def test_a_module_object_of_its_own_has_the_same_surface() -> None:
    from mtrobot.mt5.client import Mt5Client
    from mtrobot.mt5.module import Mt5Module

    other = Mt5Module(Mt5Client(target="embedded"))
    assert [n for n in (*ref.FUNCTIONS, *ref.HELPERS) if not callable(getattr(other, n, None))] == []
    assert {n: getattr(other, n, None) for n in ref.CONSTANTS} == ref.CONSTANTS
    assert all(getattr(other, name) is getattr(mt5, name) for name in ref.FIELDS)
    assert other.account_info() is None and other.last_error() == ref.NO_IPC  # not initialised: no link
