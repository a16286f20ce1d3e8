"""The ``reports`` duty: make each scheduled report once, archive it, mail it once.

Every watchdog pass (leader only, so replicas do not mail twice) asks each schedule
of ``reports:`` which report it owes (:func:`patrol.collector.reports.schedule.due`):

1. not yet archived: build it from the store, render it, write it to the archive;
2. archived but not marked mailed in the store: mail the archived file, then mark it.

The mark is in the store (collector/store/report_mailings.py), not in the folder, so a
replica that becomes leader on another machine does not mail the report again. A mail
that fails (server down, refused) raises after the other schedule had its turn; the
watchdog counts and logs it (once per streak) and the next pass tries step 2 again
with the same file, so a report is neither lost nor mailed twice. Only a crash between
the server's "250 accepted" and the mark's commit could send it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patrol.collector.reports import archive, mail
from patrol.collector.reports.schedule import Due, ReportsSettings, due

if TYPE_CHECKING:
    from patrol.collector.engine import Engine

log = logging.getLogger("patrol.collector.reports")


class ScheduledReports:
    def __init__(self, settings: ReportsSettings, engine: Engine,
                 send: Callable[[Any, Any, list[str]], None] = mail.send) -> None:
        self.settings = settings
        self.engine = engine
        self._send = send

    def run(self, now: float) -> int:
        """One pass; how many reports were mailed. Raises the first failure after
        every schedule had its turn."""
        mailed, failure = 0, None
        for kind, schedule in self.settings.scheduled().items():
            owed = due(kind, schedule, self.settings.timezone, now)
            if owed is None:
                continue
            try:
                mailed += self._deliver(owed, now)
            except Exception as exc:  # the other schedule still gets its turn
                failure = failure or exc
        if failure is not None:
            raise failure
        return mailed

    def _deliver(self, owed: Due, now: float) -> int:
        folder = self.settings.archive_of(owed.kind)
        if folder is None:  # the config refuses this; a test's settings may not
            raise ValueError(f"reports.{owed.kind}: no archive folder")
        # Each replica's folder gets the report when it leads, so its Reports page
        # lists it too; the store says whether it was mailed, by whichever replica.
        if not archive.archived(folder, owed.name):
            self._make(owed, folder, now)
        store = self.engine.store
        if store.report_mailing(owed.name) is not None:
            return 0
        schedule = self.settings.scheduled()[owed.kind]
        if (legacy := archive.legacy_sent(folder, owed.name)) is not None:
            with store.transaction() as tx:  # mailed by the Patrol before the upgrade
                tx.record_report_mailing(owed.name, legacy["at"], legacy["recipients"],
                                         legacy["message_id"])
            return 0
        smtp = self.settings.smtp
        if smtp is None:
            raise ValueError("reports: no smtp block to mail with")
        html, figures = archive.read(folder, owed.name)
        msg = mail.message(html, figures, smtp.sender, schedule.recipients,
                           smtp.subject_prefix, now)
        self._send(smtp, msg, schedule.recipients)
        with store.transaction() as tx:
            tx.record_report_mailing(owed.name, now, schedule.recipients, msg["Message-ID"])
        log.info("mailed %s to %s", owed.name, ", ".join(schedule.recipients))
        return 1

    def _make(self, owed: Due, folder: Any, now: float) -> None:
        from patrol.collector.reports import html, make

        store = self.engine.store
        if owed.kind == "daily":
            report = make.daily_report(store, owed.last, now, self.engine.policy)
        else:
            report = make.retro_report(store, owed.first, owed.last, now)
        schedule = self.settings.scheduled()[owed.kind]
        language = schedule.language or getattr(self.engine, "language", None) or "en"
        archive.store(folder, owed.name, html.render(report, language), html.to_json(report))
        log.info("archived %s in %s", owed.name, folder)
