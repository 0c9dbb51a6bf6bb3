-- Chat rooms and their messages. Times are Unix microseconds (UTC).

-- A room exists once someone posted to it or claimed it. last_seq is the
-- seq of its last message: the next one gets last_seq + 1 in the same
-- transaction. owner_id is the customer a ticket room belongs to ('' for
-- order rooms, whose owner is the order's, and unclaimed tickets).
CREATE TABLE rooms (
  id          TEXT    PRIMARY KEY,
  owner_id    TEXT    NOT NULL DEFAULT '',
  last_seq    INTEGER NOT NULL DEFAULT 0,
  create_time INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
  room_id           TEXT    NOT NULL REFERENCES rooms (id),
  seq               INTEGER NOT NULL,
  id                TEXT    NOT NULL,
  author_id         TEXT    NOT NULL,
  author_name       TEXT    NOT NULL,
  from_agent        INTEGER NOT NULL,
  text              TEXT    NOT NULL,
  client_message_id TEXT    NOT NULL DEFAULT '',
  create_time       INTEGER NOT NULL,
  PRIMARY KEY (room_id, seq)
) STRICT;

-- A resent post (same author, same client id, same room) is stored once.
CREATE UNIQUE INDEX messages_by_client_id ON messages (room_id, author_id, client_message_id)
  WHERE client_message_id != '';
