-- Events waiting to be published. A row is written in the same transaction
-- as the state change it announces; the relay publishes it after commit and
-- sets sent_time. seq is the publish order.
CREATE TABLE outbox (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT    NOT NULL UNIQUE,
  type         TEXT    NOT NULL,
  source       TEXT    NOT NULL,
  subject      TEXT    NOT NULL,
  ordering_key TEXT    NOT NULL DEFAULT '',
  time         INTEGER NOT NULL,
  data         BLOB    NOT NULL,
  sent_time    INTEGER
) STRICT;

CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_time IS NULL;
