"""The shapes of fairdrop's ids, spelled once: what the API accepts and the models keep."""

from __future__ import annotations

from typing import Annotated

import msgspec

LAUNCH_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
ITEM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
"""A store's or a SKU's id, chosen by marketing."""

LaunchId = Annotated[str, msgspec.Meta(pattern=LAUNCH_ID_PATTERN)]
StoreId = Annotated[str, msgspec.Meta(pattern=ITEM_ID_PATTERN)]
SkuId = Annotated[str, msgspec.Meta(pattern=ITEM_ID_PATTERN)]
