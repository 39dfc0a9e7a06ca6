"""biztalk-dr: disaster recovery for BizTalk Server groups.

The library behind the DAGs: configuration, T-SQL building, SQL Server access, and the planning and
checks of backup, shipping, validation and failover. Three layers (tests/test_architecture.py holds them):

- pure: plans, checks, naming, T-SQL text, advice and errors (``tsql``, ``restore_planner``, ``backup_sets``,
  ``retention``, ``paths``, ``advice``, ``errors``, ``backup_files.headers``): no Airflow, no I/O;
- operations: SQL Server and file effects (``*_jobs``, ``log_shipping``, ``shipping_copy``, ``standby_state``,
  ``atomic_files``, ...);
- the Airflow edge, the only modules that import Airflow besides ``dags/`` and ``plugins/``: ``alerts``
  (notifiers), ``assets``, ``schedules``, ``task_groups`` and ``failover_phases`` (task groups), ``task_skips``,
  ``failover_approval`` and ``windows_step_operator`` (operators), ``connections`` and ``prerequisites``
  (connections), ``config_alerts``, ``groups`` (which DAG's group runs now), and ``cli`` (its logging).

The product never imports the SQL Server stand-in (``sqlserver_standin``); the drill lives beside it.
"""

__version__ = "0.1.0"
