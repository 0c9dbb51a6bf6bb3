-- Stock per SKU. available = on_hand - reserved; the CHECKs make overselling
-- impossible even for a buggy caller. Times are Unix microseconds (UTC).
CREATE TABLE stock (
  sku         TEXT    PRIMARY KEY,
  on_hand     INTEGER NOT NULL CHECK (on_hand >= 0),
  reserved    INTEGER NOT NULL CHECK (reserved >= 0 AND reserved <= on_hand),
  update_time INTEGER NOT NULL
) STRICT;

-- One reservation per order (the order id is Reserve's idempotency key).
CREATE TABLE reservations (
  order_id    TEXT    PRIMARY KEY,
  state       TEXT    NOT NULL CHECK (state IN ('reserved', 'committed', 'released', 'expired')),
  expire_time INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

-- What the sweep looks for: held reservations by expiry.
CREATE INDEX reservations_held ON reservations (expire_time) WHERE state = 'reserved';

-- A reservation's lines, in the order Reserve received them (pos).
CREATE TABLE reservation_lines (
  order_id TEXT    NOT NULL REFERENCES reservations (order_id),
  pos      INTEGER NOT NULL,
  sku      TEXT    NOT NULL REFERENCES stock (sku),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, pos),
  UNIQUE (order_id, sku)
) STRICT, WITHOUT ROWID;
