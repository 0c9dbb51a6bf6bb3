-- The W3C traceparent of the request that recorded the event, so that one
-- trace spans the request, the publish and the consumer.
ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
