"""The admission worker: every tick, one atomic Lua step per show with a live queue."""

from boxoffice.waiting_room.service import TICK_SECONDS, tick_all
from boxoffice.worker import Job

JOBS: list[Job] = [Job("queue_admission", TICK_SECONDS, tick_all)]
