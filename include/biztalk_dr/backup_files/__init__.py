"""Readers for SQL Server backup files (uncompressed MTF and compressed MSSQLBAK)."""
