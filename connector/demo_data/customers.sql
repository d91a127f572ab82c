-- The segment the demo syncs: active customers and what Target should know about them.
SELECT customer_id, tier, ltv, city, last_order_date, newsletter_opt_in
FROM customers
WHERE is_active
