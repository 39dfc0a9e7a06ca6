"""A SQL Server stand-in: a TDS server modelling the SQL Server behaviour biztalk-dr relies on.

It exists because no SQL Server can run where this project is built and tested. Product code
never knows it talks to the stand-in: it connects with the same ODBC drivers over TCP.
See MODEL.md in this package for what is modelled, the source of each rule, and what is not.
"""
