#!/bin/bash
# Installs the BizTalk backup subset on the primary container (docker-compose service biztalk-init).
set -euo pipefail
SQLCMD=/opt/mssql-tools18/bin/sqlcmd
for f in /sql/create_biztalk_group.sql /sql/biztalk_backup_procedures.sql; do
  echo "running $f"
  "$SQLCMD" -C -S sqlprimary -U sa -P "$MSSQL_SA_PASSWORD" -b -i "$f"
done
