"""Japan's qualified invoice issuer registration number: T and 13 digits whose first digit
checks the other twelve; checked when the settings are read."""

from __future__ import annotations

import pytest

from connector.documents.registration import registration_number
from connector.errors import ConfigError, InvalidInputError
from connector.settings import load_settings


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("T5835678256246", "T5835678256246"),
        ("t5-8356-7825-6246", "T5835678256246"),
        ("Ｔ５８３５６７８２５６２４６", "T5835678256246"),  # full-width, as often typed
        ("T 7000012050002", "T7000012050002"),  # the National Tax Agency's own number
    ],
)
def test_valid_numbers(given: str, kept: str) -> None:
    assert registration_number(given) == kept


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("5835678256246", "must be T followed by 13 digits"),
        ("T583567825624", "must be T followed by 13 digits"),
        ("T58356782562460", "must be T followed by 13 digits"),
        ("T583567825624X", "must be T followed by 13 digits"),
        ("T2835678256246", "its check digit (the first digit, 2) does not match"),
        ("T6835678256246", "its check digit (the first digit, 6) does not match"),
    ],
)
def test_invalid_numbers(given: str, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why.replace("(", r"\(").replace(")", r"\)")):
        registration_number(given)


def test_the_setting_is_checked_and_normalized() -> None:
    assert load_settings(None, seller={"registration_number": "t5835678256246"}).seller == (
        load_settings(None, seller={"registration_number": "T5835678256246"}).seller
    )
    with pytest.raises(ConfigError, match=r"seller.registration_number .*check digit"):
        load_settings(None, seller={"registration_number": "T1835678256246"})
