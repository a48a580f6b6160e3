"""The reactor: one loop, a thread bridge, clean shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lab import ConfigError, LabError, LabTimeout, Reactor


def reactor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "netlab-reactor"]


def test_background_reactor_runs_work_and_joins_on_stop() -> None:
    """call() runs a coroutine on the reactor thread and stop() joins it."""
    reactor = Reactor().start()

    async def where() -> int:
        return threading.get_ident()

    assert reactor.call(where(), 5) != threading.get_ident()
    reactor.stop()
    reactor.stop()  # idempotent
    assert not reactor.running
    assert reactor.loop.is_closed()
    assert not [t for t in reactor_threads() if t.is_alive()]


def test_call_times_out_and_cancels_the_work() -> None:
    """A call that outlives its timeout raises LabTimeout and is cancelled."""
    reactor = Reactor().start()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(LabTimeout):
        reactor.call(forever(), 0.2)
    assert cancelled.wait(5)
    reactor.stop()


def test_blocking_call_on_the_reactor_thread_is_refused() -> None:
    """call() from inside the loop would deadlock, so it raises instead."""
    reactor = Reactor().start()

    async def nested() -> str:
        async def inner() -> int:
            return 1

        try:
            reactor.call(inner(), 1)
        except LabError as exc:
            return str(exc)
        return "no error"

    assert "deadlock" in reactor.call(nested(), 5)
    reactor.stop()


def test_run_async_bridges_from_another_event_loop() -> None:
    """Code on another loop (IPython, Textual) awaits reactor work."""
    reactor = Reactor().start()

    async def on_reactor() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def elsewhere() -> bool:
        loop = await reactor.run_async(on_reactor())
        return loop is reactor.loop and loop is not asyncio.get_running_loop()

    assert asyncio.run(elsewhere())
    reactor.stop()


def test_foreground_run_then_hooks_and_close() -> None:
    """run() drives the loop on this thread and runs shutdown hooks after."""
    reactor = Reactor()
    order: list[str] = []

    async def hook() -> None:
        order.append("hook")

    async def main() -> int:
        reactor.on_shutdown(hook)
        order.append("main")
        return 42

    assert reactor.run(main()) == 42
    assert order == ["main", "hook"]
    assert reactor.loop.is_closed()
    with pytest.raises(LabError):
        reactor.submit(main())


def test_leftover_tasks_are_cancelled_without_warnings() -> None:
    """Tasks still pending at stop are cancelled and awaited (no 'Task was
    destroyed' warning, which the test settings turn into an error)."""
    reactor = Reactor().start()

    async def spawn() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600))

    reactor.call(spawn(), 5)
    reactor.stop()
    assert reactor.loop.is_closed()


def test_uvloop_is_selectable() -> None:
    """--loop uvloop gives a uvloop loop behind the same API."""
    reactor = Reactor("uvloop").start()

    async def kind() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert reactor.call(kind(), 5).startswith("uvloop")
    reactor.stop()


def test_unknown_loop_is_a_config_error() -> None:
    """A typo in the loop name says what exists."""
    with pytest.raises(ConfigError, match="asyncio, uvloop"):
        Reactor("tokio")


def test_a_scope_cancels_only_the_work_its_thread_submitted() -> None:
    """Cancelling a scope from another thread cuts short the call waiting in it and refuses later
    submissions from it, while work submitted outside the scope runs on; a call whose work is already
    done when the scope sees it does not hang."""
    import concurrent.futures

    reactor = Reactor().start()
    try:
        other = reactor.submit(asyncio.sleep(0.5, result="outside"))
        scopes: list[object] = []
        outcome: list[str] = []
        started = threading.Event()

        async def quick() -> str:
            return "quick"

        def worker() -> None:
            with reactor.scope() as scope:
                scopes.append(scope)
                for _ in range(200):  # futures that finish before the scope adds them must not deadlock
                    assert reactor.call(quick(), 10) == "quick"
                started.set()
                try:
                    reactor.call(asyncio.sleep(3600), 60)
                except concurrent.futures.CancelledError:
                    outcome.append("cancelled")
                try:
                    reactor.call(quick(), 10)
                except concurrent.futures.CancelledError:
                    outcome.append("refused")

        thread = threading.Thread(target=worker)
        thread.start()
        assert started.wait(30)
        for _ in range(3000):  # up to 30 s for the long call to be in flight
            if scopes[0]._pending:  # type: ignore[attr-defined]
                break
            threading.Event().wait(0.01)
        scopes[0].cancel()  # type: ignore[attr-defined]
        thread.join(30)
        assert outcome == ["cancelled", "refused"]
        assert other.result(10) == "outside"
    finally:
        reactor.stop()
