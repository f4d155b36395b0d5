"""Filled in by its domain issue."""

from boxoffice.worker import Job

JOBS: list[Job] = []
