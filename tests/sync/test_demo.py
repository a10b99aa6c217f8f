from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from connector.settings import load_settings
from connector.sync.demo import run_demo

D = Decimal


def test_a_simulated_year_of_sample_contracts(tmp_path: Path) -> None:
    months = []
    report = run_demo(
        load_settings(),
        tmp_path / "demo",
        start=date(2026, 1, 1),
        months=12,
        on_month=months.append,
    )

    assert report.import_errors == []
    assert [m.label for m in months] == [f"2026-{n:02d}" for n in range(1, 13)]
    assert (report.contracts_billed, report.invoices, report.credit_notes) == (7, 77, 3)
    # Globex: 7 seats fewer × 20.00 for May 20 – Jul 14 (56 of 91 days) = 86.15 + 20% tax = 103.38;
    # Wayne cancels Aug 21: 300.00 × 20/31 days = 193.55 + 20% tax = 232.26.
    # Acme leaves 60 seats at 25.00 less 10% on Jul 16: 1,350.00 × 16/31 days = 696.77.
    assert report.credited == {"GBP": D("335.64"), "USD": D("696.77")}
    # The late payer (Globex) still owes its quarters; the last Initech month is not yet due.
    assert report.outstanding == {"GBP": D("4120.62"), "EUR": D("842.52")}
    # Initech: 12 seats × 23.00 + 18 TB at the 11–50 volume rate 24.00 = 708.00 a month.
    assert months[0].mrr == {
        "EUR": D("708.00"),
        "GBP": D("316.67"),
        "JPY": D("0"),
        "USD": D("1435.00"),
    }
    # Umbrella's 30-day trial ends Mar 2; Hooli's weekly pilot (50 × 6.00 × 52/12) runs Mar–Aug.
    assert months[2].mrr["JPY"] == D("105000")
    assert months[2].mrr["USD"] == D("2735.00")
    assert months[-1].mrr == {
        "EUR": D("708.00"),
        "GBP": D("270.00"),
        "JPY": D("105000"),
        "USD": D("5521.67"),
    }
