"""The holder's data trail is for holders only; departments read theirs through /exchange/accesses."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from exchange import service
from ops.auth import Principal, Role
from ops.errors import Forbidden


def test_only_a_holder_reads_the_trail_of_records_about_them(db: Session) -> None:
    clerk = Principal(subject="window-1", roles=frozenset({Role.WINDOW}), department_id="d1")
    with pytest.raises(Forbidden):
        service.accesses_about_holder(db, who=clerk, cursor=None, limit=10)
    holder = Principal(subject="11010519491231002X", roles=frozenset({Role.HOLDER}), holder_code="11010519491231002X")
    assert service.accesses_about_holder(db, who=holder, cursor=None, limit=10) == ([], None)
