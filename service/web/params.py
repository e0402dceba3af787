"""Parameter types shared by the routes."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from service.auth.apikeys import Principal
from service.deps import Deps
from service.ids import ITEM_ID_PATTERN
from service.ids import SkuId as SkuId  # the ids of a body's fields, beside the path's
from service.ids import StoreId as StoreId

AppDeps: TypeAlias = NamedDependency[Deps]
"""The process's `Deps`, injected by name (`deps`)."""

StoreQuery: TypeAlias = Annotated[str | None, QueryParameter(pattern=ITEM_ID_PATTERN)]
"""`?store=`: a store's id."""

RowId: TypeAlias = Annotated[int, PathParameter(ge=1, le=2**62)]
"""A row's id in the path: a reservation's, a registration's, a webhook delivery's."""
ReservationId: TypeAlias = RowId
RegistrationId: TypeAlias = RowId
DeliveryId: TypeAlias = RowId

HexId: TypeAlias = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{1,64}$")]
"""An id of hex digits in the path: an API key's, a hold's."""
KeyId: TypeAlias = HexId
HoldId: TypeAlias = HexId

Who: TypeAlias = NamedDependency[Principal]
"""The caller's key, as a `requires(...)` guard let it through (`who`)."""

AnyRequest: TypeAlias = Request[Any, Any, Any]
"""A request, whatever its user, auth and state types."""
