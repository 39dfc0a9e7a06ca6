"""The Airflow edge: what Airflow sees (notifiers, Assets, schedules, task groups, operators, task skips, the
shared ``@dag`` arguments) and what comes from it (SQL Server connections, which group's DAG runs now).

With ``cli``, ``dags/`` and ``plugins/``, the only code that imports Airflow (tests/test_architecture.py).
"""
