"""The launch store: the one place that talks to Redis about a launch.

One typed async function per Lua script (named arguments, replies decoded into msgspec
structs) and one per direct read of a launch's keys. Field names of the hold record and
of the launch's `meta` hash are spelled here once (`records`). Redis out surfaces as
`service.errors.Unavailable`: the scripts through `Scripts.run` (service/infra/redis.py),
the direct reads through `reading` here, so nothing above this package catches a redis
exception.
"""
