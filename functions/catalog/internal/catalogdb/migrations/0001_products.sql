-- Products. Times are Unix microseconds (UTC). seq is the row's stable
-- integer key, used by the full-text index; id is the public id. images is
-- the JSON of the product's images (NULL when it has none). revision counts
-- the committed changes and is the etag.
CREATE TABLE products (
  seq         INTEGER PRIMARY KEY,
  id          TEXT    NOT NULL UNIQUE,
  sku         TEXT    NOT NULL UNIQUE,
  name        TEXT    NOT NULL,
  description TEXT    NOT NULL,
  category    TEXT    NOT NULL,
  currency    TEXT    NOT NULL,
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  active      INTEGER NOT NULL CHECK (active IN (0, 1)),
  images      TEXT,
  revision    INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

-- Listing order (name, then id), with and without a category.
CREATE INDEX products_by_name ON products (name, id);
CREATE INDEX products_by_category ON products (category, name, id);

-- Words of names and descriptions, case- and accent-insensitive. An
-- external-content index: the text stays in products. The store keeps it
-- in step in the same transactions, one statement per batch of rows rather
-- than triggers (FTS5 flushes its pending terms at every statement that
-- writes to it: row by row, imports ran 7x slower).
CREATE VIRTUAL TABLE products_fts USING fts5(
  name, description,
  content = 'products', content_rowid = 'seq',
  tokenize = 'unicode61 remove_diacritics 2'
);
