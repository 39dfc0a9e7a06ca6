"""The DR status page as HTML (server-rendered, no JavaScript, no file from outside the project), and its chart
of the data-loss window over the last days as inline SVG. Pure functions of a ``status_view.DrView``; every value
from a record is escaped. Links are relative to the page (the plugin's mount point), so the page works behind
any base URL: ``../dags/...`` is the Airflow UI. With several groups (``render_overview``) the page lists every
group, worst first, each linking to its full page (``?group=KEY``: its DAG ids end with ``__KEY``).
"""

from __future__ import annotations

import datetime as dt
from html import escape

from biztalk_dr.domain.advice import ADVICE
from biztalk_dr.ops.standby_status import LEVELS, DatabaseStatus
from biztalk_dr.ops.status_history import Point
from biztalk_dr.ops.status_view import DrView, GroupView

__all__ = ["render_page", "render_overview", "render_history_svg", "render_run_records", "COLOURS"]

# level: (text/border colour, background)
COLOURS: dict[str, tuple[str, str]] = {"ok": ("#1a7f37", "#dafbe1"), "warn": ("#9a6700", "#fff8c5"),
                                       "critical": ("#cf222e", "#ffebe9"), "unknown": ("#57606a", "#f6f8fa"),
                                       "waiting": ("#0969da", "#ddf4ff")}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; font-weight: 600; }
.small { color: #57606a; font-size: .85rem; }
ul.reasons li { margin-bottom: .6rem; } .advice { color: #424a53; }
""" + "".join(f".level-{k} {{ background: {bg}; }} .badge-{k} {{ color: {fg}; background: {bg}; "
              f"border: 1px solid {fg}; }}\n" for k, (fg, bg) in COLOURS.items())


def _e(value: object) -> str:
    return escape("-" if value is None or value == "" else str(value))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _age(when: str | None, now: dt.datetime | None) -> str:
    if when is None or now is None:
        return ""
    return f" ({_ago((now - dt.datetime.fromisoformat(when)).total_seconds())} ago)"


def _set(set_id: int | None, when: str | None, now: dt.datetime | None) -> str:
    return "none" if set_id is None else f"set {set_id}{_age(when, now)}"


def _badge(level: str, text: str | None = None) -> str:
    return f'<span class="badge badge-{level}" data-level="{level}">{_e(text or level.upper())}</span>'


def _database_level(db: DatabaseStatus, window_level: str) -> str:
    if db.can_reach is False or db.data_loss_seconds is None:
        return "critical"
    return window_level


def _standby_state(db: DatabaseStatus, standby_reachable: bool) -> str:
    if not standby_reachable:
        return "not asked (standby unreachable)"
    return db.standby_state or "MISSING"


def _database_rows(view: DrView) -> str:
    status = view.status
    if status is None:
        return ('<tr><td colspan="8">nothing measured yet: dr_log_shipping records the status at every run'
                '</td></tr>')
    now = dt.datetime.fromisoformat(view.history_now) if view.history_now else None
    rows = []
    for db in status.databases:
        level = _database_level(db, view.window.level)
        reach = db.reachable_mark if db.can_reach else f"cannot reach it: {db.why}" if db.why else "-"
        minutes = "-" if view.window.minutes is None else f"{view.window.minutes:.0f} min"
        lag = None if db.restore_lag_seconds is None else db.restore_lag_seconds + (view.status_age_seconds or 0)
        rows.append(
            f'<tr class="level-{level}" data-database="{_e(db.name)}" data-level="{level}">'
            f"<td><b>{_e(db.name)}</b></td>"
            f"<td>full: {_e(_set(db.source_full_set, db.source_full_time, now))}<br>"
            f"log: {_e(_set(db.source_log_set, db.source_log_time, now))}</td>"
            f"<td>{_e(_set(db.shipped_set, db.shipped_time, now))}</td>"
            f"<td>{_e(_set(db.restored_set, None, None))} {_e(db.restored_mark or '')}</td>"
            f'<td data-cell="state">{_e(_standby_state(db, status.standby_reachable))}</td>'
            f"<td>{_e(reach)}</td>"
            f'<td data-cell="window">{_badge(level, minutes)}</td>'
            f"<td>{_e(_ago(lag))}</td></tr>")
    return "\n".join(rows)


def _dag(base: str, key: str | None) -> str:
    """The DAG id of ``base`` for group ``key`` (None: the deployment's only group, ids without a key)."""
    return base if key is None else f"{base}__{key}"


def _query(key: str | None) -> str:
    return "" if key is None else f"?group={escape(key, quote=True)}"


def _reasons(view: DrView, key: str | None = None) -> str:
    if not view.reasons:
        return "<p>No problem: the standby can deliver the mark above within the thresholds.</p>"
    items = [f'<li data-level="{r.level}">{_badge(r.level)} {_e(r.reason)}'
             + (f'<br><span class="advice">What to do: {_e(r.advice)}</span>' if r.advice else "")
             + _named_links(r.advice_key, key) + "</li>" for r in view.reasons]
    return '<ul class="reasons">' + "".join(items) + "</ul>"


def _named_links(advice_key: str, key: str | None = None) -> str:
    """Links to the DAGs' runs and the tasks an advice names (``dag_id`` or ``dag_id.task_id``)."""
    entry = ADVICE.get(advice_key)
    if entry is None or not entry.names:
        return ""
    links = []
    for name in entry.names:
        base, _, task_id = name.partition(".")
        dag_id = _dag(base, key)
        href = f"../dags/{escape(dag_id)}/tasks/{escape(task_id)}" if task_id else f"../dags/{escape(dag_id)}/runs"
        links.append(f'<a href="{href}">{escape(name if key is None else dag_id + name[len(base):])}</a>')
    return '<br><span class="small">Runs: ' + " · ".join(links) + "</span>"


def _run_link(dag_id: str, run_id: str | None) -> str:
    if not run_id:
        return ""
    return f'<a href="../dags/{escape(dag_id)}/runs/{escape(run_id, quote=True)}">{_e(run_id)}</a>'


def _validation(view: DrView, key: str | None = None) -> str:
    v = view.validation
    if v is None:
        return "<p>No restore validation has run yet (dr_restore_validation, weekly).</p>"
    level = "ok" if v.passed and not v.objective_exceeded else "warn" if v.passed else "critical"
    objective = "-" if v.objective_minutes is None else f"{v.objective_minutes} min"
    spent = "-" if v.group_restore_seconds is None else f"{v.group_restore_seconds} s"
    failed = f"; failed: {_e(', '.join(v.failed_databases))}" if v.failed_databases else ""
    problem = f"; {_e(v.problem)}" if v.problem else ""
    return (f'<p id="validation">{_badge(level, "PASSED" if v.passed else "FAILED")} run '
            f'{_run_link(_dag("dr_restore_validation", key), v.run_id)} ({_e(v.finished_at)}): proved mark '
            f"{_e(v.mark)} "
            f"(set {_e(v.set_id)}); group restore time {spent} against an objective of {objective}"
            f"{' (EXCEEDED)' if v.objective_exceeded else ''}{failed}{problem}. "
            f'<a href="records/validation/{escape(v.folder)}/report.md{_query(key)}">report</a></p>')


def _failover(view: DrView, key: str | None = None) -> str:
    f = view.failover
    if f is None:
        return "<p>No failover or drill has run here.</p>"
    kind = "DRY RUN" if f.dry_run else "real failover" if f.dry_run is False else "failover"
    level = "critical" if f.failed_steps else "ok"
    files = " ".join(f'<a href="records/failover/{escape(f.folder)}/{escape(n)}{_query(key)}">{escape(n)}</a>'
                     for n in f.files if not n.endswith(".json"))
    failed = f"; failed steps: {_e(', '.join(f.failed_steps))}" if f.failed_steps else ""
    return (f'<p id="failover">{_badge(level, kind)} {_e(f.mode)} run '
            f'{_run_link(_dag("dr_failover", key), f.run_id)} '
            f"({_e(f.finished_at)}), mark {_e(f.mark)}, measured recovery time {_e(f.recovery_seconds)} s"
            f"{failed}. {files}</p>")


def _hold(view: DrView, key: str | None = None) -> str:
    site = ("<p><b>The standby site is the primary now</b> (after a failover): backups run there; log shipping "
            "stands down until the old primary is re-seeded as the new standby.</p>"
            if view.primary_site == "standby" else "")
    if view.hold is None:
        return site + "<p>No backup hold: dr_full_backup and dr_log_backup run on their schedule.</p>"
    return (site + f'<p id="hold">{_badge("warn", "BACKUPS HELD")} by the failover run '
            f'{_run_link(_dag("dr_failover", key), view.hold.run_id)} since {_e(view.hold.since)}: no backup set is taken until '
            "it resumes them (or `biztalk-dr resume-backups` after an abandoned failover).</p>")


def render_history_svg(points: tuple[Point, ...] | list[Point], *, warn_minutes: int, critical_minutes: int,
                       now: dt.datetime, days: int, width: int = 900, height: int = 220) -> str:
    """The data-loss window (minutes) over the last ``days``, with the warn and critical lines; a run that found no
    reachable mark is a red tick at the top."""
    left, right, top, bottom = 50, 10, 10, 30
    start = now - dt.timedelta(days=days)
    values = [p.data_loss_seconds / 60 for p in points if p.data_loss_seconds is not None]
    ymax = max([critical_minutes * 1.25, *values]) or 1.0
    span = (now - start).total_seconds()

    def x(when: dt.datetime) -> float:
        return left + (width - left - right) * max(0.0, (when - start).total_seconds()) / span

    def y(minutes: float) -> float:
        return top + (height - top - bottom) * (1 - minutes / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="history" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>data-loss window, last {days} days (minutes)</title>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="#ffffff" stroke="#d0d7de"/>']
    for minutes, level in ((warn_minutes, "warn"), (critical_minutes, "critical")):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(minutes):.1f}" y2="{y(minutes):.1f}" '
                     f'stroke="{COLOURS[level][0]}" stroke-dasharray="4 3"/>'
                     f'<text x="{left - 4}" y="{y(minutes) + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="{COLOURS[level][0]}">{minutes}</text>')
    for day in range(days + 1):
        tick = (start + dt.timedelta(days=day))
        anchor = "start" if day == 0 else "end" if day == days else "middle"
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 12}" font-size="10" text-anchor="{anchor}" '
                     f'fill="#57606a">{tick:%m-%d}</text>')
    line = [f"{x(p.when):.1f},{y(p.data_loss_seconds / 60):.1f}" for p in points if p.data_loss_seconds is not None]
    if line:
        parts.append(f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{" ".join(line)}"/>')
    for p in points:
        if p.data_loss_seconds is None:
            parts.append(f'<line x1="{x(p.when):.1f}" x2="{x(p.when):.1f}" y1="{top}" y2="{top + 12}" '
                         f'stroke="{COLOURS["critical"][0]}" stroke-width="2"/>')
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#57606a">no status '
                     "recorded in these days</text>")
    parts.append("</svg>")
    return "".join(parts)


def render_page(view: DrView, *, days: int, key: str | None = None) -> str:
    """The full page of a group; ``key``: the group's key in a deployment of several (its DAG ids end with it)."""
    status = view.status
    measured = (f"measured {_ago(view.status_age_seconds)} ago by "
                f"{_run_link(*status.run.split('/', 1)) if status and status.run and '/' in status.run else 'a run'}"
                if status else "not measured yet")
    thresholds = f"warn at {view.warn_minutes} min, critical at {view.critical_minutes} min"
    summary_level = view.window.level if status else "unknown"
    summary = (f"If the primary were lost now: {_e(view.window.describe())}." if status else
               "What the standby can deliver has not been measured yet (no status recorded at the standby site).")
    source = "" if status is None or status.source_reachable else " (primary unreachable: from the standby's records)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DR status: {_e(view.group)}</title>
<base target="_top"><style>{_CSS}</style></head>
<body>
{"" if key is None else '<p class="small"><a href="./" target="_self">all groups</a></p>'}<h1>DR status of {_e(view.group)} {_badge(view.health)}</h1>
<p id="summary" class="level-{summary_level}" data-level="{summary_level}">{summary}
Thresholds: {thresholds}.{_e(source) if source else ""}
<span class="small">Status {measured}; page at {_e(view.now.replace("T", " ").replace("+00:00", ""))} UTC.
<a href="status.json{_query(key)}">status.json</a> · <a href="metrics">metrics</a></span></p>
<h2>Problems and what to do</h2>
{_reasons(view, key)}
<h2>Databases</h2>
<table id="databases"><thead><tr><th>database</th><th>newest at the source</th><th>newest shipped and verified at
the standby</th><th>restored on the standby</th><th>state on the standby</th><th>a failover now reaches</th>
<th>data-loss window</th><th>restore lag</th></tr></thead>
<tbody>
{_database_rows(view)}
</tbody></table>
<h2>Data-loss window, last {days} days</h2>
{render_history_svg(view.history, warn_minutes=view.warn_minutes, critical_minutes=view.critical_minutes,
                    now=dt.datetime.fromisoformat(view.now), days=days)}
<h2>Last restore validation</h2>
{_validation(view, key)}
<h2>Last failover or drill</h2>
{_failover(view, key)}
<h2>Backup schedule</h2>
{_hold(view, key)}
<h2>DAGs</h2>
<p>{" · ".join(f'<a href="../dags/{_dag(d, key)}">{_dag(d, key)}</a>' for d in ("dr_log_shipping", "dr_log_backup", "dr_full_backup",
                                                          "dr_health_check", "dr_restore_validation", "dr_failover",
                                                          "dr_standby_reseed"))}</p>
</body></html>
"""


def render_run_records(dag_id: str, run_id: str, kind: str | None, folder: str, files: list[str],
                       key: str | None = None) -> str:
    """The records one DAG run wrote at the standby site (a task page's tab); ``key``: its group's, when the
    deployment has several."""
    if not files:
        body = (f"<p>{_e(dag_id)} run {_e(run_id)} wrote no report, timeline or SampleUpdateInfo.xml at the standby "
                "site (yet).</p>")
    else:
        body = "<ul>" + "".join(f'<li><a href="../../../records/{kind}/{escape(folder)}/{escape(n)}{_query(key)}">'
                                f"{escape(n)}</a></li>" for n in files) + "</ul>"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>records of {_e(run_id)}</title>'
            f"<style>{_CSS}</style></head><body><h1>Records of {_e(dag_id)} run {_e(run_id)}</h1>{body}"
            f'<p><a href="../../../{_query(key)}">DR status page</a></p></body></html>')


def _overview_row(g: GroupView) -> str:
    link = f'<a href="./?group={escape(g.key, quote=True)}" target="_self">'
    if g.view is None:
        problems = "".join(f"<li>{_e(p)}</li>" for p in g.problems)
        return (f'<tr class="level-critical" data-group="{_e(g.key)}" data-level="critical">'
                f'<td><b>{_e(g.key)}</b><br><span class="small">{_e(g.file)}</span></td>'
                f'<td>{_badge("critical", "FILE BROKEN")}</td><td>unknown: none of its DAGs is loaded</td>'
                f'<td><ul class="reasons">{problems}</ul><span class="advice">What to do: '
                f'{_e(ADVICE["config_group_not_loaded"].action.format(file=g.file, key=g.key))}</span></td>'
                "<td>-</td><td>-</td></tr>")
    v = g.view
    window = _badge(v.window.level if v.status else "unknown",
                    "-" if v.window.minutes is None else f"{v.window.minutes:.0f} min")
    summary = _e(v.window.describe()) if v.status else "not measured yet"
    problems = "".join(f'<li data-level="{r.level}">{_badge(r.level)} {_e(r.reason)}</li>' for r in v.reasons)
    validation = ("none yet" if v.validation is None else
                  _badge("ok" if v.validation.passed else "critical", "PASSED" if v.validation.passed else "FAILED"))
    flags = (" " + _badge("warn", "BACKUPS HELD") if v.hold else "") + (
        " <b>standby is primary</b>" if v.primary_site == "standby" else "")
    return (f'<tr class="level-{v.health}" data-group="{_e(g.key)}" data-level="{v.health}">'
            f'<td>{link}<b>{_e(v.group)}</b></a><br><span class="small">{_e(g.file)}</span></td>'
            f"<td>{_badge(v.health)}{flags}</td><td>{window} {summary}</td>"
            f'<td>{f"<ul class=reasons>{problems}</ul>" if problems else "none"}</td>'
            f"<td>{_e(_ago(v.status_age_seconds)) + ' ago' if v.status else 'never'}</td><td>{validation}</td></tr>")


def render_overview(groups: list[GroupView], now: dt.datetime) -> str:
    """The page of a deployment of several groups: one row per group, the worst first (health, data-loss window,
    its problems), each linking to its full page; a group whose file never validated shows its problems."""
    ordered = sorted(groups, key=lambda g: (-LEVELS.get(g.health, 2), g.key))
    counts = {level: sum(1 for g in groups if g.health == level) for level in ("critical", "warn", "ok")}
    worst = ordered[0].health if ordered else "ok"
    said = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DR status: {len(groups)} groups</title>
<base target="_top"><style>{_CSS}</style></head>
<body>
<h1>DR status of {len(groups)} BizTalk groups {_badge(worst)}</h1>
<p id="summary" class="level-{worst}" data-level="{worst}">{_e(said)}. The worst first; a group's name opens its
full page (databases, chart, validation, failover).
<span class="small">Page at {_e(now.strftime("%Y-%m-%d %H:%M:%S"))} UTC.
<a href="status.json">status.json</a> · <a href="metrics">metrics</a></span></p>
<table id="groups"><thead><tr><th>group (file)</th><th>health</th><th>if the primary were lost now</th>
<th>problems</th><th>status measured</th><th>last restore validation</th></tr></thead>
<tbody>
{chr(10).join(_overview_row(g) for g in ordered)}
</tbody></table>
</body></html>
"""
