-- Accounts. Times are Unix microseconds (UTC). default_address is the
-- binary protobuf of shopfn.common.v1.Address, NULL when unset.
CREATE TABLE users (
  id              TEXT    PRIMARY KEY,
  email           TEXT    NOT NULL UNIQUE,
  display_name    TEXT    NOT NULL,
  role            TEXT    NOT NULL CHECK (role IN ('customer', 'admin')),
  password_hash   TEXT    NOT NULL,
  default_address BLOB,
  create_time     INTEGER NOT NULL,
  update_time     INTEGER NOT NULL
) STRICT;
