"""Registration, the draw, tickets and admission."""
