-- Orders. The columns the service queries by are columns; the rest of the
-- order (lines, totals, address, saga progress) is the JSON in body. Times
-- are Unix microseconds (UTC).
CREATE TABLE orders (
  id              TEXT    PRIMARY KEY,
  user_id         TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  idempotency_key TEXT    NOT NULL,
  request_hash    TEXT    NOT NULL,
  body            BLOB    NOT NULL,
  version         INTEGER NOT NULL,
  lease_owner     TEXT    NOT NULL DEFAULT '',
  lease_until     INTEGER NOT NULL DEFAULT 0,
  create_time     INTEGER NOT NULL,
  update_time     INTEGER NOT NULL,
  UNIQUE (user_id, idempotency_key)
) STRICT;

CREATE INDEX orders_by_user ON orders (user_id, create_time DESC, id DESC);
CREATE INDEX orders_by_time ON orders (create_time DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (update_time)
  WHERE state NOT IN ('CONFIRMED', 'CANCELLED');
