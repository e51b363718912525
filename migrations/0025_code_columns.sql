-- 0025: group metadata and extra columns per code (issue 21 item 8).

-- metadata: free-form string keys and values a marketer or the platform keeps on a group
-- (campaign ids, owners: Stripe's metadata), bounded by the API (50 keys of at most 40
-- characters, values of at most 500). code_columns: the extra upload columns the group
-- declares (["pin", "barcode"]), NULL when it declares none: then any column name is
-- accepted at upload and in templates; when declared, an upload with another column and
-- a template naming another column are refused. A constant default rewrites nothing.
ALTER TABLE groups
    ADD COLUMN metadata     jsonb  NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    ADD COLUMN code_columns text[];

-- A code's extra columns from its upload's CSV (code,pin,barcode,…): a JSON object of
-- strings, NULL for a code uploaded without any. A nullable column without a default is
-- added without rewriting codes, and a row whose value is NULL costs no byte more (the
-- null bitmap fits in the padding of the tuple header of a two-column row), so uploads
-- without extra columns store exactly what they stored before.
ALTER TABLE codes ADD COLUMN columns jsonb;

-- The extra columns an upload carried, in header order (NULL: none): the exports' header
-- is their union over the group's uploads, without reading every code.
ALTER TABLE uploads ADD COLUMN columns text[];
