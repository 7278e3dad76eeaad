-- A batch's ETA counts the sends of earlier batches still ahead of it on the shared YouSign queue:
-- only items queued or sending, a small part of all the items ever sent.
CREATE INDEX bulk_send_items_in_progress ON bulk_send_items (bulk_send_id)
    WHERE outcome IN ('queued', 'sending');
