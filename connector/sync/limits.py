"""The limits of plausible input, from the settings and the chart of accounts."""

from __future__ import annotations

from connector.accounting.chart import load_chart
from connector.billing.plausibility import Limits
from connector.settings import Settings, mapping_path


def plausibility_limits(settings: Settings) -> Limits:
    """``billing.max_backdate_days`` and ``billing.max_amount``, and the books' open date
    (``open_date`` of the chart in ``accounting.mapping_file``), whatever the target."""
    chart_file = settings.accounting.mapping_file
    return Limits(
        max_backdate_days=settings.billing.max_backdate_days,
        max_amount=dict(settings.billing.max_amount),
        open_date=load_chart(mapping_path(chart_file)).open_date,
        open_date_source=chart_file,
    )
