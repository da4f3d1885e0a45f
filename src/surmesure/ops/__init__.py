"""Operations: the jobs a server runs on a schedule (derive, segment refresh, retention) and
the record of every run of them, scheduled or by hand."""
