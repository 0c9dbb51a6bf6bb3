CREATE TABLE parts (
  item_id TEXT NOT NULL REFERENCES items(id),
  name TEXT NOT NULL
);
