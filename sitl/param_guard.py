"""Parameter changes that undo themselves: set for one test, restored on teardown (autotest's context_push)."""

from __future__ import annotations

import logging

from flightctl.vehicle.params import Params

log = logging.getLogger(__name__)


class ParamGuard:
    def __init__(self, params: Params) -> None:
        self._params = params
        self._originals: dict[str, float | int] = {}

    async def set(self, name: str, value: float) -> None:
        if name not in self._originals:
            self._originals[name] = (await self._params.get(name)).value
        await self._params.set(name, value)

    async def set_many(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            await self.set(name, value)

    @property
    def changed(self) -> dict[str, float | int]:
        return dict(self._originals)

    async def restore(self) -> None:
        """Put every changed parameter back, newest change first."""
        for name, value in reversed(self._originals.items()):
            log.info("restoring %s = %s", name, value)
            await self._params.set(name, value)
        self._originals.clear()
