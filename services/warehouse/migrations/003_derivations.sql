-- How the warehouse is derived: dim_date generation, each dimension as a view over the mirror
-- (apply upserts the affected keys from these), the current-state fact views and freshness.

-- Extends dim_date so that it is contiguous and covers [first_needed, last_needed].
CREATE FUNCTION {{pipeline}}.extend_dim_date(first_needed date, last_needed date) RETURNS integer
LANGUAGE sql AS $$
  WITH bounds AS (SELECT min(date_id) AS lo, max(date_id) AS hi FROM {{schema}}.dim_date),
  wanted AS (
    SELECT g::date AS d
    FROM bounds, generate_series(LEAST(first_needed, bounds.lo), GREATEST(last_needed, bounds.hi), interval '1 day') AS g
    WHERE bounds.lo IS NULL OR g::date < bounds.lo OR g::date > bounds.hi
  ),
  inserted AS (
    INSERT INTO {{schema}}.dim_date (date_id, year, month, day, day_of_week, day_name, month_name, quarter)
    SELECT d, extract(year FROM d)::int, extract(month FROM d)::int, extract(day FROM d)::int,
           extract(isodow FROM d)::int, to_char(d, 'FMDay'), to_char(d, 'FMMonth'), extract(quarter FROM d)::int
    FROM wanted
    ON CONFLICT (date_id) DO NOTHING
    RETURNING 1
  )
  SELECT count(*)::int FROM inserted
$$;

-- Each dimension computed from the mirror (keys stay bigint so that filters use the mirror's key;
-- the upsert casts them). parent_id is the key whose change also changes the
-- row (the legal address of a counterparty, the department of a staff member).
CREATE VIEW {{pipeline}}.dim_location_source AS
SELECT a.key_id AS location_id,
       a.image ->> 'address_line_1' AS address_line_1,
       a.image ->> 'address_line_2' AS address_line_2,
       a.image ->> 'district' AS district,
       a.image ->> 'city' AS city,
       a.image ->> 'postal_code' AS postal_code,
       a.image ->> 'country' AS country,
       a.image ->> 'phone' AS phone,
       a.effective_lsn AS source_lsn,
       a.deleted AS is_deleted,
       NULL::bigint AS parent_id
FROM {{pipeline}}.mirror_current a
WHERE a.table_name = 'address';

CREATE VIEW {{pipeline}}.dim_counterparty_source AS
SELECT c.key_id AS counterparty_id,
       c.image ->> 'counterparty_legal_name' AS counterparty_legal_name,
       a.image ->> 'address_line_1' AS counterparty_legal_address_line_1,
       a.image ->> 'address_line_2' AS counterparty_legal_address_line_2,
       a.image ->> 'district' AS counterparty_legal_district,
       a.image ->> 'city' AS counterparty_legal_city,
       a.image ->> 'postal_code' AS counterparty_legal_postal_code,
       a.image ->> 'country' AS counterparty_legal_country,
       a.image ->> 'phone' AS counterparty_legal_phone_number,
       GREATEST(c.effective_lsn, a.effective_lsn) AS source_lsn,
       c.deleted AS is_deleted,
       (c.image ->> 'legal_address_id')::bigint AS parent_id
FROM {{pipeline}}.mirror_current c
LEFT JOIN {{pipeline}}.mirror_current a
  ON a.table_name = 'address' AND a.key_id = (c.image ->> 'legal_address_id')::bigint
WHERE c.table_name = 'counterparty';

CREATE VIEW {{pipeline}}.dim_staff_source AS
SELECT s.key_id AS staff_id,
       s.image ->> 'first_name' AS first_name,
       s.image ->> 'last_name' AS last_name,
       d.image ->> 'department_name' AS department_name,
       d.image ->> 'location' AS location,
       s.image ->> 'email_address' AS email_address,
       GREATEST(s.effective_lsn, d.effective_lsn) AS source_lsn,
       s.deleted AS is_deleted,
       (s.image ->> 'department_id')::bigint AS parent_id
FROM {{pipeline}}.mirror_current s
LEFT JOIN {{pipeline}}.mirror_current d
  ON d.table_name = 'department' AND d.key_id = (s.image ->> 'department_id')::bigint
WHERE s.table_name = 'staff';

CREATE VIEW {{pipeline}}.dim_currency_source AS
SELECT c.key_id AS currency_id,
       c.image ->> 'currency_code' AS currency_code,
       -- ISO 4217 name; an unknown code keeps the code as its name
       COALESCE(iso.name, c.image ->> 'currency_code') AS currency_name,
       c.effective_lsn AS source_lsn,
       c.deleted AS is_deleted,
       NULL::bigint AS parent_id
FROM {{pipeline}}.mirror_current c
LEFT JOIN {{pipeline}}.iso_4217 iso ON iso.code = upper(c.image ->> 'currency_code')
WHERE c.table_name = 'currency';

CREATE VIEW {{pipeline}}.dim_design_source AS
SELECT d.key_id AS design_id,
       d.image ->> 'design_name' AS design_name,
       d.image ->> 'file_location' AS file_location,
       d.image ->> 'file_name' AS file_name,
       d.effective_lsn AS source_lsn,
       d.deleted AS is_deleted,
       NULL::bigint AS parent_id
FROM {{pipeline}}.mirror_current d
WHERE d.table_name = 'design';

CREATE VIEW {{pipeline}}.dim_payment_type_source AS
SELECT p.key_id AS payment_type_id,
       p.image ->> 'payment_type_name' AS payment_type_name,
       p.effective_lsn AS source_lsn,
       p.deleted AS is_deleted,
       NULL::bigint AS parent_id
FROM {{pipeline}}.mirror_current p
WHERE p.table_name = 'payment_type';

CREATE VIEW {{pipeline}}.dim_transaction_source AS
SELECT t.key_id AS transaction_id,
       t.image ->> 'transaction_type' AS transaction_type,
       (t.image ->> 'sales_order_id')::integer AS sales_order_id,
       (t.image ->> 'purchase_order_id')::integer AS purchase_order_id,
       t.effective_lsn AS source_lsn,
       t.deleted AS is_deleted,
       NULL::bigint AS parent_id
FROM {{pipeline}}.mirror_current t
WHERE t.table_name = 'transaction';

-- Current state of each fact: the latest version of every natural key in source order
-- (commit LSN, then index within the transaction); keys whose latest change is a delete are left out.
CREATE VIEW {{schema}}.fact_sales_order_current AS
SELECT latest.* FROM (
  SELECT DISTINCT ON (f.sales_order_id) f.*
  FROM {{schema}}.fact_sales_order f
  ORDER BY f.sales_order_id, f.source_lsn DESC, f.source_seq DESC
) latest
WHERE latest.change_op <> 'd';

CREATE VIEW {{schema}}.fact_purchase_order_current AS
SELECT latest.* FROM (
  SELECT DISTINCT ON (f.purchase_order_id) f.*
  FROM {{schema}}.fact_purchase_order f
  ORDER BY f.purchase_order_id, f.source_lsn DESC, f.source_seq DESC
) latest
WHERE latest.change_op <> 'd';

CREATE VIEW {{schema}}.fact_payment_current AS
SELECT latest.* FROM (
  SELECT DISTINCT ON (f.payment_id) f.*
  FROM {{schema}}.fact_payment f
  ORDER BY f.payment_id, f.source_lsn DESC, f.source_seq DESC
) latest
WHERE latest.change_op <> 'd';

-- Everything committed at or before consistent_through_lsn is in the warehouse: the minimum
-- heartbeat over the live shards, NULL until every one of them has applied a heartbeat.
CREATE VIEW {{schema}}.pipeline_freshness AS
SELECT CASE WHEN count(*) > 0 AND bool_and(p.heartbeat_lsn IS NOT NULL) THEN min(p.heartbeat_lsn) END AS consistent_through_lsn,
       CASE WHEN count(*) > 0 AND bool_and(p.heartbeat_lsn IS NOT NULL)
            THEN (array_agg(p.heartbeat_committed_at ORDER BY p.heartbeat_lsn))[1] END AS consistent_through_at
FROM {{pipeline}}.shard_position p
WHERE NOT p.ended;
