"""Working days (工作日): Chinese statutory holidays and 调休 working weekends, and deadlines counted in them.

How a deadline is counted (民法典 第二百零一条、第二百零三条): the day of filing is not counted, whatever
the hour and whether or not it is itself a working day; day one is the first working day after it; a
period of N working days ends at 24:00 (Asia/Shanghai) of the N-th working day.
"""

from ops.workdays.service import (
    Deadline,
    WorkCalendar,
    add_working_days,
    calendar_status,
    load_calendar,
    working_days_between,
    working_days_left,
)

__all__ = [
    "Deadline",
    "WorkCalendar",
    "add_working_days",
    "calendar_status",
    "load_calendar",
    "working_days_between",
    "working_days_left",
]
