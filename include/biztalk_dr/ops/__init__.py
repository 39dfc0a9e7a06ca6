"""Operations: SQL Server and file effects — backups, shipping, restores, retention, state and status files.

They take their connections, paths and clocks as arguments and import no Airflow (tests/test_architecture.py);
they reach the edge in two named places only, lazily: the Airflow connection behind ``sqlserver.SqlServer`` and
the group whose DAG runs now behind ``config_files.load_config()``.
"""
