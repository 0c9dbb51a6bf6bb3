-- Payments, one per order. Amounts are integer minor units of
-- currency_code; times are Unix microseconds (UTC). No card data beyond
-- the payment token and the processor's display hints (brand, last four).
CREATE TABLE payments (
  order_id       TEXT    PRIMARY KEY,
  id             TEXT    NOT NULL UNIQUE,
  state          TEXT    NOT NULL CHECK (state IN ('authorized', 'captured', 'refunded', 'voided', 'declined')),
  payment_token  TEXT    NOT NULL,
  currency_code  TEXT    NOT NULL,
  amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
  captured_minor INTEGER NOT NULL CHECK (captured_minor BETWEEN 0 AND amount_minor),
  refunded_minor INTEGER NOT NULL CHECK (refunded_minor BETWEEN 0 AND captured_minor),
  card_brand     TEXT    NOT NULL,
  card_last4     TEXT    NOT NULL,
  decline_code   TEXT    NOT NULL,
  create_time    INTEGER NOT NULL,
  update_time    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The simulated processor's state: authorization attempts per order, so
-- tokens that fail the first N attempts count across calls and restarts.
CREATE TABLE processor_attempts (
  order_id TEXT    PRIMARY KEY,
  attempts INTEGER NOT NULL CHECK (attempts > 0)
) STRICT, WITHOUT ROWID;
