module github.com/auditrelay/auditrelay

go 1.26.8
