-- processing_since: when the product's longest-waiting PROCESSING image
-- entered that state (Unix microseconds), NULL when none is processing.
-- FailStalledImages finds stalled images by it. Images recorded before
-- this column have no time of their own: their product's update time
-- stands in, as it does in the service.
ALTER TABLE products ADD COLUMN processing_since INTEGER;

UPDATE products SET processing_since = update_time
WHERE images IS NOT NULL
  AND EXISTS (SELECT 1 FROM json_each(products.images) WHERE value ->> 'state' = 'processing');

CREATE INDEX products_processing ON products (processing_since)
  WHERE processing_since IS NOT NULL;
