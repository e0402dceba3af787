-- The launch's time zone (an IANA name, checked by the app): the pages and e-mails
-- give its times there, as the store's clock shows them.
ALTER TABLE launches ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
