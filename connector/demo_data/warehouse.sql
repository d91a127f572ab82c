-- The demo warehouse: a few thousand customers with the awkward values real data has.
CREATE OR REPLACE TABLE customers AS
SELECT
    'cust-' || lpad(CAST(i AS VARCHAR), 5, '0') AS customer_id,
    CASE i % 4 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' WHEN 2 THEN 'bronze' ELSE NULL END AS tier,
    CAST(round((i * 37 % 100000) / 7.0, 2) AS DECIMAL(12, 2)) AS ltv,
    CASE i % 6
        WHEN 0 THEN 'São Paulo'
        WHEN 1 THEN 'Berlin'
        WHEN 2 THEN 'New York, NY'
        WHEN 3 THEN 'Zürich'
        WHEN 4 THEN '東京'
        ELSE 'Paris & Co. 100% "chic"'
    END AS city,
    DATE '2026-01-01' + CAST(i % 300 AS INTEGER) AS last_order_date,
    CASE WHEN i % 5 = 0 THEN NULL ELSE i % 2 = 0 END AS newsletter_opt_in,
    i % 10 <> 9 AS is_active
FROM range(1, 5001) AS t(i);
