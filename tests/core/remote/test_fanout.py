"""ReplicaPool with real threads: spread over replicas, failover, a dead replica marked down once."""

from __future__ import annotations

import threading
import time

import pytest

from arena.remote.errors import RemoteAuthError, RemoteConnectionError
from arena.remote.fanout import ReplicaPool
from arena.remote.retry import RetryPolicy

pytestmark = pytest.mark.timeout(60)


class Conn:
    """A connection to replica ``host``; ``dead`` replicas fail after a 'reconnect window'."""

    def __init__(self, host: str, port: int, dead: set[str], calls: list, window_s: float = 0.05) -> None:
        self.host, self.dead, self.calls, self.window_s = host, dead, calls, window_s
        self.closed = False

    def ask(self, x: int) -> tuple[str, int]:
        self.calls.append(self.host)
        if self.host in self.dead:
            time.sleep(self.window_s)
            raise RemoteConnectionError(f"{self.host} is gone")
        time.sleep(0.02)
        return self.host, x * 2

    def close(self) -> None:
        self.closed = True


def pool(hosts, dead=(), per=1, **kw):
    calls: list = []
    conns: list = []

    def connect(h, p):
        c = Conn(h, p, set(dead), calls)
        conns.append(c)
        return c

    return ReplicaPool([(h, 1) for h in hosts], connect, per_replica=per, **kw), calls, conns


def test_a_burst_is_spread_over_every_replica_and_answers_in_order() -> None:
    p, calls, conns = pool(["a", "b", "c", "d"], per=2)
    with p:
        futures = [p.submit(lambda c, i=i: c.ask(i)) for i in range(8)]
        results = [f.result(10) for f in futures]
    assert [x for _, x in results] == [2 * i for i in range(8)]
    assert {h for h, _ in results} == {"a", "b", "c", "d"}
    assert all(c.closed for c in conns)


def test_a_dead_replica_fails_over_and_is_tried_once_only() -> None:
    p, calls, _ = pool(["a", "dead"], dead={"dead"}, per=1)
    with p:
        results = [f.result(10) for f in [p.submit(lambda c, i=i: c.ask(i)) for i in range(10)]]
    assert all(h == "a" for h, _ in results)
    assert calls.count("dead") == 1  # marked down after one failed window, not one per request
    assert list(p.down) == [1] and "dead is gone" in p.down[1]


def test_when_every_replica_is_down_requests_fail_at_once_naming_the_causes() -> None:
    p, _, _ = pool(["x", "y"], dead={"x", "y"})
    with p:
        with pytest.raises(RemoteConnectionError):
            p.submit(lambda c: c.ask(1)).result(10)
        t0 = time.monotonic()
        with pytest.raises(
            RemoteConnectionError, match=r"remote: no server replica left: x:1: x is gone; y:1: y is gone"
        ):
            p.submit(lambda c: c.ask(2)).result(10)
        assert time.monotonic() - t0 < 0.5


def test_auth_and_other_errors_reach_the_caller_without_failover() -> None:
    p, calls, _ = pool(["a", "b"])

    def refused(c):
        c.calls.append(c.host)
        raise RemoteAuthError("bad token")

    with p:
        with pytest.raises(RemoteAuthError):
            p.submit(refused).result(10)
        with pytest.raises(ZeroDivisionError):
            p.submit(lambda c: 1 / 0).result(10)
        assert not p.down and len(calls) == 1


def test_an_unreachable_replica_fails_construction_and_closes_the_others() -> None:
    opened: list = []

    def connect(h, p):
        if h == "bad":
            raise OSError("refused")
        c = Conn(h, p, set(), [])
        opened.append(c)
        return c

    with pytest.raises(RemoteConnectionError, match="bad:1: refused"):
        ReplicaPool([("good", 1), ("bad", 1)], connect)
    assert opened and all(c.closed for c in opened)


def test_retry_policy_retries_connection_problems_only_and_reports_the_attempts() -> None:
    attempts: list = []

    def flaky(left):
        attempts.append(left)
        if len(attempts) < 3:
            raise ConnectionRefusedError("no")
        return "ok"

    assert RetryPolicy(retries=3, backoff_s=0.001).call(flaky, "ping") == "ok" and len(attempts) == 3
    with pytest.raises(RemoteConnectionError, match=r"ping failed after 2 attempts"):
        RetryPolicy(retries=1, backoff_s=0.001).call(lambda left: (_ for _ in ()).throw(ConnectionError("x")), "ping")
    calls = []
    with pytest.raises(TimeoutError):
        RetryPolicy(retries=5, backoff_s=0.001).call(
            lambda left: calls.append(1) or (_ for _ in ()).throw(TimeoutError("slow")), "act", retry_timeouts=False
        )
    assert len(calls) == 1
    with pytest.raises(ValueError):
        RetryPolicy(retries=5).call(lambda left: (_ for _ in ()).throw(ValueError("codec")), "act")


def test_close_waits_for_requests_in_flight() -> None:
    p, _, _ = pool(["a"])
    started = threading.Event()

    def slow(c):
        started.set()
        time.sleep(0.2)
        return 1

    f = p.submit(slow)
    started.wait(5)
    p.close()
    assert f.result(1) == 1


def test_a_timeout_fails_the_request_but_does_not_mark_the_replica_down() -> None:
    from arena.remote.errors import RemoteTimeoutError

    p, _, _ = pool(["a"])

    def slow(c):
        raise RemoteTimeoutError("no reply in time")

    with p:
        with pytest.raises(RemoteTimeoutError):
            p.submit(slow).result(10)
        assert not p.down and p.submit(lambda c: c.ask(1)).result(10) == ("a", 2)


def test_a_batch_is_split_into_one_contiguous_piece_per_live_replica_in_row_order() -> None:
    p, calls, _ = pool(["a", "b", "c"], per=1)
    rows = list(range(7))
    with p:
        pieces = p.submit_split(len(rows), lambda c, a, b: [c.ask(x) for x in rows[a:b]]).result(10)
    assert [(a, b) for a, b, _ in pieces] == [(0, 3), (3, 5), (5, 7)]
    assert [x for _, _, r in pieces for _, x in r] == [2 * x for x in rows]
    assert sorted({h for _, _, r in pieces for h, _ in r}) == ["a", "b", "c"]  # concurrent, one piece each


def test_a_piece_whose_replica_is_lost_runs_on_a_live_one_and_later_batches_skip_it() -> None:
    p, calls, _ = pool(["a", "dead"], dead={"dead"}, per=1)
    with p:
        first = p.submit_split(4, lambda c, a, b: [c.ask(x) for x in range(a, b)]).result(10)
        assert [x for _, _, r in first for _, x in r] == [0, 2, 4, 6]
        assert {h for _, _, r in first for h, _ in r} == {"a"}
        second = p.submit_split(4, lambda c, a, b: [c.ask(x) for x in range(a, b)]).result(10)
    assert [(a, b) for a, b, _ in second] == [(0, 4)]  # one live replica: one piece
    assert calls.count("dead") == 1


def test_small_batches_rotate_over_replicas() -> None:
    p, calls, _ = pool(["a", "b"], per=1)
    with p:
        hosts = [p.submit_split(1, lambda c, a, b: c.ask(a)).result(10)[0][2][0] for _ in range(4)]
    assert hosts == ["a", "b", "a", "b"]
