"""The pure domain: plans, checks, naming, T-SQL text, advice, errors and the group file's schema.

Values in, values out: no Airflow, no I/O module, no file read or written, here or in anything imported from
here (tests/test_architecture.py checks every module of this folder). What the operations and the edge decide is
decided here, so it is tested without a server, a clock or a file.
"""
