-- The star schema of the warehouse contract (totesys-schema.md §2): every diagram column in the diagram's
-- order and type, then the metadata columns in the decided order.
-- {{schema}} is the warehouse schema, {{pipeline}} the pipeline's own schema (quoted identifiers).

CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE {{schema}}.dim_date (
  date_id date PRIMARY KEY,
  year integer NOT NULL,
  month integer NOT NULL,
  day integer NOT NULL,
  day_of_week integer NOT NULL CHECK (day_of_week BETWEEN 1 AND 7),
  day_name varchar NOT NULL,
  month_name varchar NOT NULL,
  quarter integer NOT NULL CHECK (quarter BETWEEN 1 AND 4)
);

-- Dimensions: the latest version of each key. A placeholder row (fact before its dimension)
-- has source_lsn NULL and every other column NULL until the real row arrives.
CREATE TABLE {{schema}}.dim_staff (
  staff_id integer PRIMARY KEY,
  first_name varchar,
  last_name varchar,
  department_name varchar,
  location varchar,
  email_address varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_location (
  location_id integer PRIMARY KEY,
  address_line_1 varchar,
  address_line_2 varchar,
  district varchar,
  city varchar,
  postal_code varchar,
  country varchar,
  phone varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_currency (
  currency_id integer PRIMARY KEY,
  currency_code varchar,
  currency_name varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_design (
  design_id integer PRIMARY KEY,
  design_name varchar,
  file_location varchar,
  file_name varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_counterparty (
  counterparty_id integer PRIMARY KEY,
  counterparty_legal_name varchar,
  counterparty_legal_address_line_1 varchar,
  counterparty_legal_address_line_2 varchar,
  counterparty_legal_district varchar,
  counterparty_legal_city varchar,
  counterparty_legal_postal_code varchar,
  counterparty_legal_country varchar,
  counterparty_legal_phone_number varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_payment_type (
  payment_type_id integer PRIMARY KEY,
  payment_type_name varchar,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.dim_transaction (
  transaction_id integer PRIMARY KEY,
  transaction_type varchar,
  sales_order_id integer,
  purchase_order_id integer,
  source_lsn pg_lsn,
  is_deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Facts: append-only, one row per committed change of the source row, unique by event_id.
-- source_seq (the change's index within its transaction, -1 for snapshot rows) orders two
-- changes of one row in the same transaction; it sits before the decided trailing columns.
CREATE TABLE {{schema}}.fact_sales_order (
  sales_record_id serial PRIMARY KEY,
  sales_order_id integer NOT NULL,
  created_date date REFERENCES {{schema}}.dim_date (date_id),
  created_time time(3),
  last_updated_date date REFERENCES {{schema}}.dim_date (date_id),
  last_updated_time time(3),
  sales_staff_id integer REFERENCES {{schema}}.dim_staff (staff_id),
  counterparty_id integer REFERENCES {{schema}}.dim_counterparty (counterparty_id),
  units_sold integer,
  unit_price numeric(10, 2),
  currency_id integer REFERENCES {{schema}}.dim_currency (currency_id),
  design_id integer REFERENCES {{schema}}.dim_design (design_id),
  agreed_payment_date date REFERENCES {{schema}}.dim_date (date_id),
  agreed_delivery_date date REFERENCES {{schema}}.dim_date (date_id),
  agreed_delivery_location_id integer REFERENCES {{schema}}.dim_location (location_id),
  source_seq integer NOT NULL,
  change_op text NOT NULL CHECK (change_op IN ('c', 'u', 'd', 'r')),
  event_id text NOT NULL UNIQUE,
  source_lsn pg_lsn NOT NULL,
  source_committed_at timestamptz NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fact_sales_order_history ON {{schema}}.fact_sales_order (sales_order_id, source_lsn DESC, source_seq DESC);

CREATE TABLE {{schema}}.fact_purchase_order (
  purchase_record_id serial PRIMARY KEY,
  purchase_order_id integer NOT NULL,
  created_date date REFERENCES {{schema}}.dim_date (date_id),
  created_time time(3),
  last_updated_date date REFERENCES {{schema}}.dim_date (date_id),
  last_updated_time time(3),
  staff_id integer REFERENCES {{schema}}.dim_staff (staff_id),
  counterparty_id integer REFERENCES {{schema}}.dim_counterparty (counterparty_id),
  item_code varchar,
  item_quantity integer,
  item_unit_price numeric,
  currency_id integer REFERENCES {{schema}}.dim_currency (currency_id),
  agreed_delivery_date date REFERENCES {{schema}}.dim_date (date_id),
  agreed_payment_date date REFERENCES {{schema}}.dim_date (date_id),
  agreed_delivery_location_id integer REFERENCES {{schema}}.dim_location (location_id),
  source_seq integer NOT NULL,
  change_op text NOT NULL CHECK (change_op IN ('c', 'u', 'd', 'r')),
  event_id text NOT NULL UNIQUE,
  source_lsn pg_lsn NOT NULL,
  source_committed_at timestamptz NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fact_purchase_order_history ON {{schema}}.fact_purchase_order (purchase_order_id, source_lsn DESC, source_seq DESC);

CREATE TABLE {{schema}}.fact_payment (
  payment_record_id serial PRIMARY KEY,
  payment_id integer NOT NULL,
  created_date date REFERENCES {{schema}}.dim_date (date_id),
  created_time time(3),
  last_updated_date date REFERENCES {{schema}}.dim_date (date_id),
  last_updated_time time(3),
  transaction_id integer REFERENCES {{schema}}.dim_transaction (transaction_id),
  counterparty_id integer REFERENCES {{schema}}.dim_counterparty (counterparty_id),
  payment_amount numeric,
  currency_id integer REFERENCES {{schema}}.dim_currency (currency_id),
  payment_type_id integer REFERENCES {{schema}}.dim_payment_type (payment_type_id),
  paid boolean,
  payment_date date REFERENCES {{schema}}.dim_date (date_id),
  source_seq integer NOT NULL,
  change_op text NOT NULL CHECK (change_op IN ('c', 'u', 'd', 'r')),
  event_id text NOT NULL UNIQUE,
  source_lsn pg_lsn NOT NULL,
  source_committed_at timestamptz NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fact_payment_history ON {{schema}}.fact_payment (payment_id, source_lsn DESC, source_seq DESC);
