"""biztalk-dr: disaster recovery for BizTalk Server groups.

The library behind the DAGs: configuration, T-SQL building, SQL Server access, and the planning and
checks of backup, shipping, validation and failover. It imports without Airflow; Airflow appears only
where a connection is resolved (``sqlserver``) and in ``dags/``.
"""

__version__ = "0.1.0"
