"""Reports from the ticket store: the daily inspection report and the retrospective.

DOMAIN.md's process ends in them: routine inspections end in a daily inspection
report (:mod:`.daily`), and the team reviews what recurs and how fast it responds
(:mod:`.retro`). Both are built from what the store already keeps (tickets, their
timelines, hosts and the latest check states) by pure functions that return plain,
JSON-ready dicts; :mod:`.html` lays them out as one self-contained HTML file with
charts (:mod:`.charts`, matplotlib) embedded as PNG ``data:`` URIs.

Modules: :mod:`.period` (UTC days and periods), :mod:`.facts` (what each ticket's
timeline says: reopens, first response, human touch, flapping), :mod:`.source`
(reading the store), :mod:`.sla` (respond/resolve outcomes), :mod:`.figures`
(means and rankings), :mod:`.retro`, :mod:`.daily`, :mod:`.make` (store in, report
out), :mod:`.charts`, :mod:`.present` (how figures read), :mod:`.html`,
:mod:`.locate` (which store to read), :mod:`.cli` (``patrol report``), and for the
collector's schedule :mod:`.schedule` (the config's ``reports:``), :mod:`.archive`
(one file per report, and what was mailed) and :mod:`.mail` (charts as ``cid:`` parts).

Importing this package imports nothing: the agent's start-up builds the CLI parser,
and matplotlib and Jinja2 are loaded only when a report is made.
"""
