"""The reactor: one asyncio loop that every endpoint of a lab shares.

Interactive front-ends run it in a daemon thread so servers keep serving
while a user sits at a prompt; headless playback may run it on the main
thread with :meth:`Reactor.run`.  Work crosses threads through one bridge:

* :meth:`Reactor.submit` schedules a coroutine and returns a
  :class:`concurrent.futures.Future`;
* :meth:`Reactor.call` runs a coroutine and waits for it with a timeout
  (refused on the reactor thread, where it would deadlock);
* :meth:`Reactor.run_async` awaits a coroutine from another event loop.

Work submitted inside :meth:`Reactor.scope` can be cancelled together
from another thread, without touching anything else the loop runs (a
scenario playing in a lab the user is also working in).

Tests: tests/test_reactor.py
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from lab.errors import ConfigError, LabError, LabTimeout

__all__ = ["LOOPS", "CallScope", "Reactor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOPS = ("asyncio", "uvloop")

ShutdownHook = Callable[[], Awaitable[None]]


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.new_event_loop()
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ConfigError(
                "uvloop is not installed", hint="pip install 'netlab[uvloop]'"
            ) from None
        return uvloop.new_event_loop()
    raise ConfigError(f"unknown loop {kind!r}", hint=f"choose one of {', '.join(LOOPS)}")


class CallScope:
    """The reactor work one thread submits while the scope is current:
    :meth:`cancel` (from any thread) cancels what is pending and every
    later submission at once."""

    def __init__(self) -> None:
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self.cancelled = False

    def add(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            cancelled = self.cancelled
            if not cancelled:
                self._pending.add(future)
        if cancelled:
            future.cancel()
        else:  # outside the lock: a future already done calls back at once
            future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            pending, self._pending = self._pending, set()
        for future in pending:
            future.cancel()


_SCOPE: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("netlab_call_scope", default=None)


class Reactor:
    """Owns one event loop; start it in a thread or run it in this one."""

    def __init__(self, loop: str = "asyncio") -> None:
        self.loop_kind = loop
        self.loop = _new_loop(loop)
        self._thread: threading.Thread | None = None
        self._owner: int | None = None  # ident of the thread running the loop
        self._hooks: list[ShutdownHook] = []
        self._stopped = False
        self._lock = threading.Lock()

    # -- running ---------------------------------------------------------

    def start(self) -> Reactor:
        """Run the loop in a daemon thread; returns once it is running."""
        if self._thread is not None:
            return self
        if self._stopped:
            raise LabError("this reactor was stopped", hint="create a new one")
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self._owner = threading.get_ident()
            self.loop.call_soon(ready.set)
            try:
                self.loop.run_forever()
            finally:
                self._finish_loop()

        self._thread = threading.Thread(target=main, name="netlab-reactor", daemon=True)
        self._thread.start()
        ready.wait()
        atexit.register(self.stop)
        return self

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` on this thread's loop until it finishes, then shut
        down (headless use: ``netlab serve``, scenario playback)."""
        if self._thread is not None:
            raise LabError("reactor already runs in a thread")
        asyncio.set_event_loop(self.loop)
        self._owner = threading.get_ident()
        try:
            return self.loop.run_until_complete(main)
        finally:
            try:
                self.loop.run_until_complete(self._run_hooks())
            finally:
                self._stopped = True
                self._finish_loop()
                asyncio.set_event_loop(None)

    @property
    def running(self) -> bool:
        return self.loop.is_running()

    def in_reactor_thread(self) -> bool:
        return threading.get_ident() == self._owner

    # -- the bridge ------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the reactor from any thread."""
        if self._stopped or self.loop.is_closed():
            coro.close()
            raise LabError("the reactor is stopped", hint="start a new lab")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        scope = _SCOPE.get()
        if scope is not None:
            scope.add(future)
        return future

    @contextlib.contextmanager
    def scope(self) -> Iterator[CallScope]:
        """Gather what this thread submits from now on into one
        :class:`CallScope`, until the block ends."""
        scope = CallScope()
        token = _SCOPE.set(scope)
        try:
            yield scope
        finally:
            _SCOPE.reset(token)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the reactor and wait for its result.

        Raises :class:`LabTimeout` (and cancels the work) after ``timeout``
        seconds.  Ctrl-C while waiting cancels the work and re-raises
        :class:`KeyboardInterrupt`; the reactor keeps running.
        """
        if self.in_reactor_thread():
            coro.close()
            raise LabError(
                "blocking call on the reactor thread would deadlock",
                hint="use the async variant (await lab.aserve(...)) inside coroutines",
            )
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():  # the work itself raised a TimeoutError (LabTimeout)
                raise
            future.cancel()
            raise LabTimeout(f"no answer within {timeout} s") from None
        except KeyboardInterrupt as exc:
            future.cancel()
            exc.netlab_cancelled = True  # type: ignore[attr-defined]  # a shell may say so in one line
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from any loop: directly on the reactor's own loop,
        through the bridge from another one (IPython, Textual)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self.loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` soon on the reactor, from any thread."""
        if self.in_reactor_thread():
            self.loop.call_soon(fn, *args)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    # -- shutdown --------------------------------------------------------

    def on_shutdown(self, hook: ShutdownHook) -> None:
        """Await ``hook()`` first thing in :meth:`stop` (close servers, ...)."""
        self._hooks.append(hook)

    async def _run_hooks(self) -> None:
        hooks, self._hooks = self._hooks[::-1], []
        for hook in hooks:
            try:
                await asyncio.wait_for(hook(), 5.0)
            except Exception:
                logger.exception("shutdown hook failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Close everything and stop the loop; safe to call twice or at exit."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        thread = self._thread
        if thread is None:
            if not self.loop.is_running() and not self.loop.is_closed():
                self.loop.run_until_complete(self._run_hooks())
                self._finish_loop()
            return
        atexit.unregister(self.stop)
        if self.in_reactor_thread():
            raise LabError("stop() called on the reactor thread", hint="call it from another thread")
        if thread.is_alive() and not self.loop.is_closed():
            done = asyncio.run_coroutine_threadsafe(self._run_hooks(), self.loop)
            try:
                done.result(timeout)
            except Exception:
                logger.warning("lab shutdown did not finish cleanly", exc_info=True)
            self.loop.call_soon_threadsafe(self.loop.stop)
        thread.join(timeout)

    def _finish_loop(self) -> None:
        """Cancel leftover tasks and close the loop (on the loop's thread)."""
        loop = self.loop
        if loop.is_closed():
            return
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self.running else "idle")
        return f"<Reactor {self.loop_kind} {state}>"
