-- One-time sign-in links for the staff pages. The link carries a random token; only its
-- SHA-256 is kept. Redeeming one marks it used in the statement that checks it, so a
-- link signs in once, before it expires, and only while its key is not revoked.
CREATE TABLE signin_links (
    token_hash bytea PRIMARY KEY,
    key_id     text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX signin_links_by_key ON signin_links (key_id);
