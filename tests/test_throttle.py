"""The login throttle on its own, with the time passed in: how the wait
grows, where it stops, when a source is forgotten, how many are kept."""

from __future__ import annotations

import pytest

from lab.services import Services
from lab.services.throttle import LOGIN_THROTTLE, Throttle, source_of

A, B = "192.0.2.1", "192.0.2.2"


def fail(throttle: Throttle, source: str, times: int, now: float = 0.0) -> float:
    """``times`` failures at ``now``; the last one's delay."""
    delay = 0.0
    for _ in range(times):
        delay = throttle.failed(source, now).delay
    return delay


def test_the_first_failures_are_free_then_the_wait_doubles_to_the_cap() -> None:
    """1 s after 3 failures, doubling each failure, never more than 30 s."""
    throttle = Throttle()
    assert [fail(throttle, A, 1) for _ in range(9)] == [0, 0, 1, 2, 4, 8, 16, 30, 30]
    assert throttle.failures(A, 0.0) == 9


def test_an_attempt_waits_for_the_turn_the_last_failure_set() -> None:
    """After the third failure the next attempt waits 1 s, and none waits once the turn has come."""
    throttle = Throttle()
    assert throttle.admit(A, 0.0) == 0
    fail(throttle, A, 3, now=10.0)
    assert throttle.admit(A, 10.25) == pytest.approx(0.75)
    assert throttle.failures(A, 10.25) == 3


def test_parallel_attempts_of_one_source_take_turns() -> None:
    """Five connections asking at once are checked one step apart, not all at once."""
    throttle = Throttle()
    fail(throttle, A, 4)  # the step is now 2 s
    assert [throttle.admit(A, 0.0) for _ in range(5)] == [2, 4, 6, 8, 10]


def test_an_attempt_booked_beyond_the_cap_is_refused_unchecked() -> None:
    """A turn more than ``cap`` away is refused; the next failure tells how many were."""
    throttle = Throttle(cap=5.0)
    fail(throttle, A, 5)  # step 4 s, capped at 5 later
    assert throttle.admit(A, 0.0) == 4  # turn at 4, the next at 8
    assert throttle.admit(A, 0.0) is None
    assert throttle.admit(A, 0.0) is None
    assert throttle.retry_after(A, 0.0) == 8
    penalty = throttle.failed(A, 4.0)
    assert (penalty.failures, penalty.delay, penalty.refused) == (6, 5.0, 2)
    assert throttle.failed(A, 4.0).refused == 0


def test_other_sources_are_never_slowed() -> None:
    throttle = Throttle()
    fail(throttle, A, 50)
    assert throttle.admit(B, 0.0) == 0
    assert throttle.failed(B, 0.0).delay == 0


def test_a_quiet_source_is_forgotten() -> None:
    """Nothing for ``forget`` seconds after the last failure (and its turn
    long past): the count starts again from nothing."""
    throttle = Throttle(forget=600.0)
    fail(throttle, A, 6, now=0.0)
    assert throttle.failures(A, 599.0) == 6
    assert throttle.admit(A, 599.0) == 0  # its turn (8 s after the last failure) is long past
    assert throttle.failures(A, 608.0) == 0 and A not in throttle
    assert throttle.failed(A, 608.0).failures == 1


def test_a_success_does_not_wipe_the_record() -> None:
    """A guesser owning one account cannot log in between guesses to start
    afresh: only the quiet period forgets (fail2ban counts the same way)."""
    throttle = Throttle()
    fail(throttle, A, 3)
    assert throttle.admit(A, 0.0) == 1  # the right password waits its turn too...
    assert throttle.failed(A, 1.0).delay == 2  # ...and the next guess is slowed more


def test_tracked_sources_are_bounded() -> None:
    """A flood from many addresses keeps at most ``max_sources``, the least
    recently failed going first."""
    throttle = Throttle(max_sources=100)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(throttle) == 100
    assert "10.0.3.231" in throttle and "10.0.0.0" not in throttle
    fail(throttle, "10.0.3.132", 1, now=1000.0)  # refreshed: no longer the oldest
    throttle.failed("198.51.100.1", 1001.0)
    assert "10.0.3.132" in throttle and "10.0.3.133" not in throttle


def test_stale_sources_go_before_the_bound_is_reached() -> None:
    throttle = Throttle(forget=10.0)
    for n in range(50):
        throttle.failed(f"10.0.0.{n}", 0.0)
    throttle.failed(B, 20.0)
    assert len(throttle) == 1


def test_sources_are_addresses_and_ipv6_counts_per_64() -> None:
    assert source_of("127.0.0.1") == "127.0.0.1"
    assert source_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("fe80::1%eth0") == "fe80::/64"
    assert source_of("/run/lab.sock") == "/run/lab.sock"


def test_one_throttle_per_lab() -> None:
    """Every server of a lab asks the same service."""
    services = Services()
    assert services.get(LOGIN_THROTTLE) is services.get(LOGIN_THROTTLE)


@pytest.mark.parametrize("given", [{"free": -1}, {"first": 0}, {"first": 5, "cap": 1}, {"max_sources": 0}])
def test_nonsense_parameters_are_refused(given: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Throttle(**given)  # type: ignore[arg-type]
