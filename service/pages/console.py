"""Pages for staff, agents and operators: sign in with an API key, then the pickup
desk, the agent console and the operations dashboard."""

from __future__ import annotations

from typing import Any

HANDLERS: list[Any] = []
