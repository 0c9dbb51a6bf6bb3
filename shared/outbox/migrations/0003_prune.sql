-- Sent events are kept for a while (for inspection and replays), then
-- pruned by sent_time.
CREATE INDEX outbox_sent ON outbox (sent_time) WHERE sent_time IS NOT NULL;
