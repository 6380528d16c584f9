"""Fast paths the benchmarks keep, each proven to give what the plain way gives.

A fast path is a second way to the same answer; it stays only where ``make bench`` shows it
pays per call beyond the noise floor. ``linked_to`` (a framework's cancellation token linked to
the task by one relay per token, instead of an anyio cancel scope per call) must behave exactly
like that cancel scope in every case here. (The other kept one, jsonschema-rs's first verdict on
arguments, is held to jsonschema's verdict on every generated argument set in
``tests/test_fuzz_schema.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest
from autogen_core import CancellationToken

from bridge.tasks import linked_to

pytestmark = pytest.mark.anyio

Link = Callable[[CancellationToken, str], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def scope_linked(token: CancellationToken, what: str) -> AsyncIterator[None]:
    """The plain way: an anyio cancel scope per block, cancelled by the token."""
    if token.is_cancelled():
        raise asyncio.CancelledError(f"{what} cancelled by its cancellation token")
    with anyio.CancelScope() as scope:
        token.add_callback(scope.cancel)
        yield
    if scope.cancel_called:  # also when it fired after the block's last await
        raise asyncio.CancelledError(f"{what} cancelled by its cancellation token")


async def outcome(scenario: Callable[[Link, CancellationToken], Awaitable[Any]], link: Link) -> tuple[Any, ...]:
    """What a caller sees of ``scenario`` run in a task of its own: its value or error, whether the
    task is left marked as cancelling, and whether a cancellation still waits for its next await."""

    async def caller() -> tuple[Any, ...]:
        token = CancellationToken()
        try:
            result: Any = ("returned", await scenario(link, token))
        except asyncio.CancelledError as e:
            result = ("cancelled", str(e))
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        try:
            await asyncio.sleep(0)
            pending = False
        except asyncio.CancelledError:
            pending = True
        return (*result, cancelling, pending)

    return await asyncio.create_task(caller())


async def never_cancelled(link: Link, token: CancellationToken) -> str:
    async with link(token, "call"):
        await asyncio.sleep(0)
    return "done"


async def cancelled_before(link: Link, token: CancellationToken) -> str:
    token.cancel()
    async with link(token, "call"):
        return "ran"
    return "after"  # pragma: no cover


@asynccontextmanager
async def cancelled_soon(token: CancellationToken) -> AsyncIterator[None]:
    """``token`` cancelled 10 ms into the block, from another task."""
    async def cancel() -> None:
        await asyncio.sleep(0.01)
        token.cancel()

    canceller = asyncio.create_task(cancel())
    try:
        yield
    finally:
        await canceller


async def cancelled_while_waiting(link: Link, token: CancellationToken) -> str:
    async with cancelled_soon(token), link(token, "call"):
        await asyncio.sleep(30)
    return "slept"  # pragma: no cover


async def cancelled_as_the_block_ends(link: Link, token: CancellationToken) -> str:
    async with link(token, "call"):
        token.cancel()  # no await after it
    return "after"  # pragma: no cover


async def nested_blocks(link: Link, token: CancellationToken) -> str:
    async with cancelled_soon(token), link(token, "outer"), link(token, "inner"):
        await asyncio.sleep(30)
    return "slept"  # pragma: no cover


async def callers_own_cancellation(link: Link, token: CancellationToken) -> str:
    # The caller's scope, not the token, cancels: it must reach the caller's scope untouched.
    with anyio.move_on_after(0.01) as scope:
        async with link(token, "call"):
            await asyncio.sleep(30)
    return f"caller's scope caught it: {scope.cancelled_caught}; token fired: {token.is_cancelled()}"


async def two_calls_one_token(link: Link, token: CancellationToken) -> list[str]:
    async def one(i: int) -> str:
        try:
            async with link(token, f"call {i}"):
                await asyncio.sleep(30)
        except asyncio.CancelledError as e:
            return str(e)
        return "slept"  # pragma: no cover

    calls = [asyncio.create_task(one(i)) for i in range(2)]
    await asyncio.sleep(0.01)
    token.cancel()
    return list(await asyncio.gather(*calls))


async def many_calls_then_cancelled(link: Link, token: CancellationToken) -> str:
    for _ in range(5):
        async with link(token, "call"):
            await asyncio.sleep(0)
    return await cancelled_while_waiting(link, token)


@pytest.mark.parametrize("scenario", [never_cancelled, cancelled_before, cancelled_while_waiting,
                                      cancelled_as_the_block_ends, nested_blocks, callers_own_cancellation,
                                      two_calls_one_token, many_calls_then_cancelled],
                         ids=lambda f: f.__name__)
async def test_the_token_relay_behaves_as_a_cancel_scope(scenario: Callable[[Link, CancellationToken],
                                                                            Awaitable[Any]]) -> None:
    plain = await outcome(scenario, scope_linked)
    assert await outcome(scenario, linked_to) == plain
    assert plain[2:] == (0, False)  # and neither leaves the caller half-cancelled
