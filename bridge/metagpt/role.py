"""``ToolRole``: a MetaGPT ``Role`` that stops cleanly when its LLM chooses no further action."""

from __future__ import annotations

from metagpt.roles import Role  # type: ignore[import-not-found, unused-ignore]

__all__ = ["ToolRole"]


class ToolRole(Role):  # type: ignore[misc, unused-ignore]
    """A ``Role`` for tool actions (``equip(role, server, ...)``), safe in ``react`` mode.

    MetaGPT 0.8.2's ``Role._think`` reports progress even when the LLM answers ``-1`` ("done") in
    react mode, so ``_act`` then runs with no action and the role fails; here ``_think`` reports
    whether there is an action to run.
    """

    async def _think(self) -> bool:
        await super()._think()
        return self.rc.todo is not None
