"""Plumbing: settings, Postgres, Redis, Lua scripts, keys and the embedded servers."""
