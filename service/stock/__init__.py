"""Stock: holds in Redis, durable reservations in Postgres, and what keeps them agreeing."""
