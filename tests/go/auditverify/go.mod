module launchrelay.test/auditverify

go 1.21
