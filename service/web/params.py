"""Parameter types shared by the routes."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency

from service.deps import Deps

AppDeps: TypeAlias = NamedDependency[Deps]
"""The process's `Deps`, injected by name (`deps`)."""

AnyRequest: TypeAlias = Request[Any, Any, Any]
"""A request, whatever its user, auth and state types."""
