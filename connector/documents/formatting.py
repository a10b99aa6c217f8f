"""Amounts, dates, rates, quantities and countries as a document writes them in its locale,
with babel. An amount is shown with its currency's minor unit (ISO 4217: two digits for EUR,
none for JPY), never more or fewer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from connector.billing.money import currency, round_money


@dataclass(frozen=True)
class Formats:
    locale: str
    date_pattern: str
    currency: str

    def money(self, amount: Decimal) -> str:
        unit = currency(self.currency)
        return self._money(round_money(amount, unit), unit.exponent)

    def _money(self, amount: Decimal, digits: int) -> str:
        pattern = Locale.parse(self.locale).currency_formats["standard"].pattern
        pattern = pattern.split(";")[0]
        number = pattern.replace("¤", "").strip("\xa0 ")
        body = number.split(".")[0] + ("." + "0" * digits if digits else "")
        text = format_currency(
            abs(amount),
            self.currency,
            format=pattern.replace(number, body),
            locale=self.locale,
            currency_digits=False,
        )
        return ("−" if amount < 0 else "") + text.replace("\xa0", " ")

    def date(self, day: date) -> str:
        return format_date(day, self.date_pattern, locale=self.locale)

    def number(self, value: Decimal) -> str:
        text = format_decimal(value.normalize(), locale=self.locale, decimal_quantization=False)
        return text.replace("\xa0", " ")

    def percent(self, rate: Decimal) -> str:
        return self.number(rate)

    def country(self, code: str) -> str:
        return Locale.parse(self.locale).territories.get(code, code)
