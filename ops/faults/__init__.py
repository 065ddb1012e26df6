"""Fault checks against real processes: `python -m ops.faults [sigkill|db_restart|storage_down]`."""
