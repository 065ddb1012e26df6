"""Sharing exchange: requests, working-day deadlines, approvals, grants, data access, usage trail."""
