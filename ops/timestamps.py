"""Times the hub accepts from callers: every one must carry a time zone (an offset), so it names one instant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator


def _must_carry_zone(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00+08:00)")
    return value


# A datetime field of a request schema: one without a time zone is refused at the field (422).
ZonedDatetime = Annotated[datetime, AfterValidator(_must_carry_zone)]
