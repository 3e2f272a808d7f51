"""OtcDetail's wire fields are written once (start_otc.FIELDS): everything that names
them again is held to that table here, field by field."""

from __future__ import annotations

import attrs
import pytest
from _helpers import entry

from flipkart_otc import OtcDetail
from flipkart_otc._serialize import detail_dict
from flipkart_otc._wire import start_otc
from flipkart_otc._wire.start_otc import FIELDS, Kind
from flipkart_otc.simulator import FeVisit

WIRE = [f for f in FIELDS if f.kind is not Kind.KEY]
# another valid value for each JSON name, so each field can be changed alone
OTHER = {
    "feName": "Shyam",
    "taskId": "999",
    "otc": "654321",
    "expiryTime": 1739383981000,
    "createdAt": 1739382000000,
    "logisticPartner": "Delhivery",
    "lob": "NONLARGE",
}


def converted(fe_id: str, raw: dict[str, object]) -> OtcDetail:
    detail: OtcDetail = start_otc._converter.structure(
        {**raw, start_otc._FE_ID_KEY: fe_id}, OtcDetail
    )
    return detail


def test_the_table_names_every_attribute_of_the_model_once() -> None:
    assert [f.attribute for f in FIELDS] == list(attrs.fields_dict(OtcDetail))
    assert {f.json_name for f in WIRE} == set(entry()) == set(OTHER)


def test_the_json_view_and_the_simulator_write_every_field() -> None:
    detail = converted("fe1", entry())
    assert list(detail_dict(detail)) == [f.attribute for f in FIELDS]
    visit = FeVisit("fe1", "Ram", "1", "123456", 1, 2, "eKart", "LARGE")
    assert set(visit.entry(seconds=False)) == {f.json_name for f in WIRE}


@pytest.mark.parametrize("field", WIRE, ids=lambda f: f.attribute)
def test_each_field_is_read_from_its_json_name_by_both_paths(field: start_otc.WireField) -> None:
    changed = {**entry(), field.json_name: OTHER[field.json_name]}
    slow, fast = converted("fe1", changed), start_otc._plain_detail("fe1", changed)
    assert fast == slow  # the hand-written path reads the field where the converter does
    assert getattr(slow, field.attribute) != getattr(converted("fe1", entry()), field.attribute)


@pytest.mark.parametrize("field", WIRE, ids=lambda f: f.attribute)
def test_unchanged_looks_at_every_field(field: start_otc.WireField) -> None:
    detail = converted("fe1", entry())
    assert start_otc.unchanged(entry(), detail)
    assert not start_otc.unchanged({**entry(), field.json_name: OTHER[field.json_name]}, detail)
