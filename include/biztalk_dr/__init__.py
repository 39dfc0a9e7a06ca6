"""biztalk-dr: disaster recovery for BizTalk Server groups.

The library behind the DAGs. Its folders are its layers, and they import downwards only (edge -> ops -> domain;
tests/test_architecture.py holds them to it):

- ``domain``: plans, checks, naming, T-SQL text, advice, errors and the group file's schema. No Airflow, no I/O:
  values in, values out;
- ``ops``: SQL Server and file effects (the ``*_jobs`` task bodies, shipping, retention, state files), taking
  their connections, paths and clocks as arguments. No Airflow;
- ``edge``: what Airflow sees (notifiers, Assets, schedules, task groups, operators, task skips, DAG defaults) and
  what comes from it (connections, which group's DAG runs now): with ``cli``, ``dags/`` and ``plugins/`` the only
  code that imports Airflow;
- ``backup_files``: the backup-file reader (a format library; its parsing is pure) and ``cli``: the command line.

The product never imports the SQL Server stand-in (``sqlserver_standin``, its own distribution); the drill lives
beside it.
"""

__version__ = "0.1.0"
