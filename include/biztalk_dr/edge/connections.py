"""SQL Server connections as Airflow holds them: the ODBC provider's hook, for ``sqlserver.SqlServer``.

The one place the library looks an Airflow connection up for SQL access; the connection's credentials stay in
Airflow (its connections or secrets backend) and never pass through biztalk-dr's files or logs.
"""

from __future__ import annotations

from collections.abc import Callable

from biztalk_dr.domain.errors import ConnectionNotConfigured
from biztalk_dr.ops.sqlserver import DbApiConnection

__all__ = ["airflow_connector"]


def airflow_connector(conn_id: str) -> Callable[[int], DbApiConnection]:
    """A connect function for an Airflow connection, through the ODBC provider."""

    def connect(login_timeout: int) -> DbApiConnection:
        from airflow.providers.odbc.hooks.odbc import OdbcHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        hook = OdbcHook(odbc_conn_id=conn_id, connect_kwargs={"timeout": login_timeout, "autocommit": True})
        try:
            driver = hook.driver
        except AirflowNotFoundException:  # the connection is not defined (issue 15: exit 2)
            raise ConnectionNotConfigured(
                0, f"the Airflow connection {conn_id!r} is not defined: add it (Admin > Connections, or "
                   f"AIRFLOW_CONN_{conn_id.upper()})", conn_id=conn_id) from None
        if not driver:
            raise ConnectionNotConfigured(
                0,
                f"Airflow connection {conn_id!r} names no ODBC driver: add the extra "
                '{"driver": "ODBC Driver 18 for SQL Server"} (or FreeTDS) and set '
                "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True",
                conn_id=conn_id,
            )
        return hook.get_conn()

    return connect
