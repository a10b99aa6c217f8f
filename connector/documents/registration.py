"""Japan's qualified invoice issuer registration number (適格請求書発行事業者登録番号).

The number is ``T`` followed by 13 digits: a corporation's Corporate Number (法人番号), or for
an individual a 13-digit number the National Tax Agency assigns in the same form. Its first
digit is a check digit over the other twelve (Ordinance on the Designation of Corporate Numbers
(法人番号の指定等に関する省令), article 2: ``9 - (sum of P_n x Q_n for n = 1..12) mod 9``, P_n the
n-th digit counted from the last, Q_n 1 for odd n and 2 for even n), which python-stdnum's
``stdnum.jp.cn`` checks.
"""

from __future__ import annotations

import unicodedata

from stdnum.exceptions import ValidationError
from stdnum.jp import cn

from connector.errors import InvalidInputError


def registration_number(value: str) -> str:
    """``value`` as ``T`` and 13 digits (spaces, hyphens and full-width characters are
    dropped), or :class:`InvalidInputError` saying why it is not a registration number."""
    text = unicodedata.normalize("NFKC", value).strip().upper()
    compact = "".join(ch for ch in text if ch not in " -")
    if not compact.startswith("T"):
        raise InvalidInputError(f"registration number {value!r} must be T followed by 13 digits")
    digits = compact[1:]
    if len(digits) != 13 or not digits.isdigit():
        raise InvalidInputError(f"registration number {value!r} must be T followed by 13 digits")
    try:
        cn.validate(digits)
    except ValidationError:
        raise InvalidInputError(
            f"registration number {value!r}: its check digit (the first digit, "
            f"{digits[0]}) does not match the other twelve"
        ) from None
    return "T" + digits
