"""What a command needs before it starts, checked first, so that it fails with one line saying what is missing
and how to provide it — not with a traceback, nor minutes into a run (``biztalk-dr drill`` used to retry a
task for minutes on a machine without unixODBC).

The checks are those the product's own SQL access depends on (``connections.airflow_connector``): unixODBC's
driver manager, the Airflow connection of each instance, the ODBC driver each connection names (through the
ODBC provider's own rules), and that the driver manager can load that driver.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from biztalk_dr.domain.errors import PrerequisiteMissing

__all__ = ["Missing", "connection_ids", "require", "check_driver_manager",
           "check_connections", "check_driver"]

_DEFINE_CONNECTION = ("define {it} as {variables} (JSON, see the README's Connections) "
                      "or in Airflow's connections; for make run's group: source var/env.sh")
_IGNORED_DRIVER = object()  # a driver named in the extra while the ODBC provider ignores it there
_INSTALL_UNIXODBC = "install unixODBC: sudo apt-get install -y unixodbc (Debian/Ubuntu)"
_INSTALL_DRIVER = {
    "freetds": "install FreeTDS's ODBC driver: sudo apt-get install -y tdsodbc (Debian/Ubuntu)",
    "odbc driver 18 for sql server": "install Microsoft ODBC Driver 18 for SQL Server (Microsoft's install page for "
                                     "your Linux distribution: msodbcsql18)",
    "odbc driver 17 for sql server": "install Microsoft ODBC Driver 17 for SQL Server (msodbcsql17)",
}


@dataclass(frozen=True)
class Missing:
    """One prerequisite that does not hold: what, and how to provide it."""

    what: str
    how: str

    def __str__(self) -> str:
        return f"{self.what}: {self.how}"


def require(*checks: Iterable[Missing]) -> None:
    """Raise PrerequisiteMissing with what the first failing check found (later checks depend on earlier
    ones: no driver can load without the driver manager)."""
    for found in checks:
        found = list(found)
        if found:
            raise PrerequisiteMissing(found)


def check_driver_manager() -> list[Missing]:
    """unixODBC's libodbc, which pyodbc links."""
    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:
        return [Missing(f"unixODBC's driver manager (libodbc.so.2) is not installed ({exc})", _INSTALL_UNIXODBC)]
    return []


def connection_ids(cfg, sites: Sequence[str] = ("primary", "standby", "validation")) -> list[str]:  # noqa: ANN001
    """The Airflow connection ids of the group's SQL instances at ``sites``, in configuration order."""
    ids: list[str] = []
    for site in sites:
        if site == "validation":
            if cfg.sites.validation is not None:
                ids.append(cfg.sites.validation.conn_id)
        else:
            ids += [i.conn_id for i in getattr(cfg.sites, site).instances.values()]
    return list(dict.fromkeys(ids))


def check_connections(conn_ids: Sequence[str]) -> list[Missing]:
    """Each connection defined and naming a driver that the driver manager can load."""
    found = {conn_id: _driver_of(conn_id) for conn_id in conn_ids}
    if undefined := [conn_id for conn_id, driver in found.items() if driver is None]:
        many = len(undefined) > 1
        variables = ("environment variables " + ", ".join(f"AIRFLOW_CONN_{c.upper()}" for c in undefined) if many
                     else f"an environment variable AIRFLOW_CONN_{undefined[0].upper()}")
        return [Missing(f"{_connections(undefined)} {'are' if many else 'is'} not defined",
                        _DEFINE_CONNECTION.format(it="them" if many else "it", variables=variables))]
    if in_extra := [conn_id for conn_id, driver in found.items() if driver is _IGNORED_DRIVER]:
        return [Missing(f"{_connections(in_extra)} name{'' if len(in_extra) > 1 else 's'} the ODBC driver in the "
                        "extra, which the ODBC provider ignores by default",
                        "set AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True")]
    by_driver: dict[str, list[str]] = {}
    for conn_id, driver in found.items():
        by_driver.setdefault(str(driver), []).append(conn_id)
    missing = []
    for driver, ids in by_driver.items():
        missing += check_driver(driver, f"named by {_connections(ids)}")
    return missing


def _connections(ids: Sequence[str]) -> str:
    return f"the Airflow connection{'s' if len(ids) > 1 else ''} " + ", ".join(repr(i) for i in ids)


def check_driver(driver: str, named_by: str) -> list[Missing]:
    """``driver`` (a name registered with unixODBC, or a path to the driver's library) can be loaded."""
    if not driver:
        return [Missing(f"no ODBC driver is {named_by}",
                        'add {"driver": "FreeTDS"} (or "ODBC Driver 18 for SQL Server") to its extra and set '
                        "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True")]
    found = check_driver_manager()
    if found:
        return found
    if driver.startswith("/"):
        if Path(driver).is_file():
            return []
        return [Missing(f"the ODBC driver library {driver} ({named_by}) does not exist",
                        "install the driver, or name an installed one in the connection's extra")]
    problem = _driver_load_problem(driver)
    if problem is None:
        return []
    installed = ", ".join(_installed_drivers()) or "none"
    how = _INSTALL_DRIVER.get(driver.lower(), f"install the ODBC driver {driver!r}, or name an installed one in "
                                              "the connection's extra")
    return [Missing(f"the ODBC driver {driver!r} ({named_by}) cannot be loaded: {problem} (drivers registered "
                    f"with unixODBC: {installed})", how)]


def _driver_of(conn_id: str) -> object:
    """The driver the ODBC provider will use for ``conn_id`` (its rule: the extra's "driver", used only when
    allow_driver_in_extra is set; "" for none); None when the connection is not defined, _IGNORED_DRIVER when
    the extra names one that the provider ignores."""
    from airflow.providers.common.compat.sdk import conf
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    masker = logging.getLogger("airflow.sdk._shared.secrets_masker.secrets_masker")
    level = masker.level
    masker.setLevel(logging.ERROR)  # its "too short to mask" warning on a "7.4" in the extra is not ours to print
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    finally:
        masker.setLevel(level)
    driver = str({k.lower(): v for k, v in conn.extra_dejson.items()}.get("driver") or "").strip().strip("{}").strip()
    if driver and not conf.getboolean("providers.odbc", "allow_driver_in_extra", fallback=False):
        return _IGNORED_DRIVER
    return driver


def _installed_drivers() -> list[str]:
    import pyodbc

    return list(pyodbc.drivers())


@functools.lru_cache(maxsize=8)
def _driver_load_problem(driver: str) -> str | None:
    """None when unixODBC loads ``driver``; else what it said. A connection to a port nothing listens on
    tells: the driver answers (a network error) only once it is loaded."""
    import pyodbc

    try:
        pyodbc.connect(f"DRIVER={{{driver}}};SERVER=127.0.0.1;PORT=9;UID=x;PWD=x;", timeout=1, autocommit=True).close()
    except pyodbc.Error as exc:
        text = " ".join(str(a) for a in exc.args)
        state = str(exc.args[0]) if exc.args else ""
        if state == "IM002" or "Can't open lib" in text or "file not found" in text:
            return re.sub(r"(?: \(\d+\))?(?: \(SQL\w+\))?$", "", text.split("]")[-1].strip()) or text
    return None
