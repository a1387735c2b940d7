"""The one host grammar of every remote family."""

from __future__ import annotations

import pickle

import pytest

from arena.remote.errors import MessageTooLargeError, RemoteConnectionError, RemoteServerError, RemoteTimeoutError
from arena.remote.hosts import host_label, parse_host, parse_hosts


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gpu-box", ("gpu-box", 8000)),
        ("gpu-box:8001", ("gpu-box", 8001)),
        ("10.0.0.2", ("10.0.0.2", 8000)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::1]", ("::1", 8000)),
        ("::1", ("::1", 8000)),
        (("h", 7), ("h", 7)),
    ],
)
def test_entries(spec, expected) -> None:
    assert parse_host(spec, 8000) == expected


def test_lists_keep_duplicates_and_a_lone_tuple_is_one_host() -> None:
    assert parse_hosts("a:1,b,a:1", 8000) == [("a", 1), ("b", 8000), ("a", 1)]
    assert parse_hosts(("a", 5), 8000) == [("a", 5)]
    assert host_label("::1", 5) == "[::1]:5" and host_label("a", 5) == "a:5"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("http://a:1", "looks like a URL"),
        ("a:0", "outside 1..65535"),
        ("a:x", "is not a number"),
        ("a,,b", "has an empty entry"),
        ("[::1", "missing ']'"),
        ("", "has an empty entry"),
    ],
)
def test_bad_entries_name_what_is_wrong(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hosts(spec, 8000)


def test_a_family_scheme_is_accepted_others_are_not() -> None:
    assert parse_host("tcp://a:5", 5555, schemes=("tcp",)) == ("a", 5)
    with pytest.raises(ValueError, match=r"or tcp:// addresses"):
        parse_host("ws://a:5", 5555, schemes=("tcp",))


def test_errors_pickle_with_their_attributes_and_are_builtins_too() -> None:
    for exc in (
        MessageTooLargeError(10, 5),
        RemoteServerError("boom", endpoint="a:1"),
        RemoteTimeoutError("late", endpoint="a:1", attempts=3, elapsed_s=1.5),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and vars(back) == vars(exc)
    assert isinstance(RemoteTimeoutError("x"), TimeoutError) and isinstance(RemoteConnectionError("x"), ConnectionError)
    assert isinstance(MessageTooLargeError(2, 1), ValueError)
