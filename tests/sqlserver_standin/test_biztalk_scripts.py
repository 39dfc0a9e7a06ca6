"""The stand-in's model of UpdateDatabase.vbs reads the SampleUpdateInfo.xml dr_failover generates."""

from __future__ import annotations

import pytest

from biztalk_dr.domain.update_info import update_info_xml
from biztalk_dr.ops.config_files import load_config
from sqlserver_standin.biztalk_scripts import update_database_statements
from tests.biztalk_dr.test_config import EXAMPLE


def test_every_database_of_the_generated_file_is_repointed():
    statements = update_database_statements(update_info_xml(load_config(EXAMPLE)))
    assert ("UPDATE [BizTalkMgmtDb].dbo.adm_MessageBox SET DBServerName = N'SQLDR01', DBName = N'BizTalkMsgBoxDb' "
            "WHERE DBName = N'BizTalkMsgBoxDb'") in statements
    assert "UPDATE [BizTalkMgmtDb].dbo.adm_Group SET SubscriptionDBServerName = N'SQLDR01'" in statements
    assert "UPDATE [BizTalkMgmtDb].dbo.adm_Group SET SSOServerName = N'SQLDR01'" in statements
    assert any("adm_OtherBackupDatabases" in s and "ServerName = N'SQLDR01'" in s for s in statements)


def test_a_file_the_script_could_not_use_is_refused():
    with pytest.raises(ValueError, match="not a SampleUpdateInfo.xml"):
        update_database_statements("<Other/>")
    with pytest.raises(ValueError, match="<TrackingDB> has no newDBServer attribute"):
        update_database_statements('<UpdateConfiguration><ManagementDB oldDBName="a" newDBName="a" newDBServer="b"/>'
                                   '<TrackingDB oldDBName="t" newDBName="t"/></UpdateConfiguration>')
