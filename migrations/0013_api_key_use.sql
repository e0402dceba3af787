-- When each API key was last used. Written at most once a minute a key (not a write a
-- request), so it says "in use today", not "at this second".
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
