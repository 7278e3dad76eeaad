-- A bulk mandate's every transition updates its batch item by mandate id: without an index that
-- scanned the batch (up to 10,000 rows) inside the transaction holding the mandate's locks.
CREATE INDEX bulk_send_items_mandate ON bulk_send_items (mandate_id) WHERE mandate_id IS NOT NULL;
