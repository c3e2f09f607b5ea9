-- Pruning the inbox of rows older than its horizon reads them by time.
CREATE INDEX inbox_by_time ON inbox (handled_at);
