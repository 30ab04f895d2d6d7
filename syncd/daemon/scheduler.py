"""One APScheduler job per scheduled pair, kept in step with the configuration.

A job does not run a pair itself: it hands the pair to the daemon, which runs one run
per pair at a time and skips paused pairs. A pair with ``every`` or ``cron`` gets an
incremental job; a pair with ``full_cron`` gets a second job whose runs are full
reconciles. An interval pair runs as soon as it is scheduled; missed fire times
coalesce into one run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config import Config, PairConfig

#: Called with (pair, full) when a schedule fires.
Fire = Callable[[str, bool], None]


def pair_triggers(pair: PairConfig) -> dict[str, tuple[BaseTrigger, bool]]:
    """The jobs a pair needs: job id -> (trigger, full)."""
    jobs: dict[str, tuple[BaseTrigger, bool]] = {}
    if pair.every:
        jobs[pair.name] = (IntervalTrigger(seconds=pair.interval_seconds or 0), False)
    elif pair.cron:
        jobs[pair.name] = (CronTrigger.from_crontab(pair.cron), False)
    if pair.full_cron:
        jobs[f"{pair.name} (full)"] = (CronTrigger.from_crontab(pair.full_cron), True)
    return jobs


def _shape(trigger: BaseTrigger) -> str:
    return str(trigger)


class PairScheduler:
    """The daemon's scheduler: :meth:`apply` makes its jobs match a configuration."""

    def __init__(self, fire: Fire) -> None:
        self.fire = fire
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._shapes: dict[str, str] = {}

    def start(self) -> None:
        """Start firing."""
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop firing; jobs already handed over are the daemon's business."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def apply(self, config: Config) -> dict[str, list[str]]:
        """Add, reschedule and remove jobs to match ``config``; say what changed."""
        wanted: dict[str, tuple[str, BaseTrigger, bool]] = {}
        for pair in config.pairs.values():
            for job_id, (trigger, full) in pair_triggers(pair).items():
                wanted[job_id] = (pair.name, trigger, full)
        changes: dict[str, list[str]] = {"added": [], "rescheduled": [], "removed": []}
        for job_id in list(self._shapes):
            if job_id not in wanted:
                self.scheduler.remove_job(job_id)
                del self._shapes[job_id]
                changes["removed"].append(job_id)
        for job_id, (name, trigger, full) in wanted.items():
            shape = _shape(trigger)
            if job_id not in self._shapes:
                # an interval pair runs as soon as it is scheduled, then every interval
                first = (
                    {"next_run_time": datetime.now(UTC)}
                    if isinstance(trigger, IntervalTrigger)
                    else {}
                )
                self.scheduler.add_job(
                    self.fire, trigger, args=(name, full), id=job_id, name=job_id, **first
                )
                changes["added"].append(job_id)
            elif self._shapes[job_id] != shape:
                self.scheduler.reschedule_job(job_id, trigger=trigger)
                changes["rescheduled"].append(job_id)
            self._shapes[job_id] = shape
        return changes

    def next_fire_times(self) -> dict[str, datetime | None]:
        """Each scheduled pair's next fire time (the earliest of its jobs)."""
        times: dict[str, datetime | None] = {}
        for job in self.scheduler.get_jobs():
            name = job.args[0]
            at = getattr(job, "next_run_time", None)
            if at is not None and (times.get(name) is None or at < times[name]):
                times[name] = at
            times.setdefault(name, at)
        return times
