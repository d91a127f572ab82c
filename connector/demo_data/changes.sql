-- What happens in the warehouse between two demo runs: a few upgrades, a move, new sign-ups.
UPDATE customers SET tier = 'platinum' WHERE customer_id IN ('cust-00004', 'cust-00008', 'cust-00012');
UPDATE customers SET city = 'Lisboa' WHERE customer_id = 'cust-00001';
INSERT INTO customers VALUES
    ('cust-90001', 'gold', 10.5, 'Oslo', DATE '2026-11-27', true, true),
    ('cust-90002', NULL, 0, 'Zürich', DATE '2026-11-28', NULL, true);
