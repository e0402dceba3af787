"""Who is calling: signed shopper tokens and hashed API keys."""
