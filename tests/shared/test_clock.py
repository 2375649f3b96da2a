"""shared.clock: hybrid logical clock stamps."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.clock import HybridLogicalClock, Stamp, is_stamp

MAX_WALL = 10**13 - 1
nodes = st.text(min_size=1, max_size=12)
stamps = st.builds(Stamp, st.integers(0, MAX_WALL), st.integers(0, 0xFFFF), nodes)


def frozen(ms: int):
    return lambda: ms


def sequence(values):
    it = iter(values)
    return lambda: next(it)


def test_string_form():
    assert str(Stamp(1764109800000, 10, "dev-1")) == "1764109800000-000a-dev-1"


def test_parse_round_trip_with_dashes_in_node():
    s = Stamp.parse("1764109800000-00ff-dev-1-a")
    assert s == Stamp(1764109800000, 255, "dev-1-a")


@given(stamps)
def test_parse_inverts_str(s):
    assert Stamp.parse(str(s)) == s


@given(stamps, stamps)
def test_string_form_sorts_like_stamp(a, b):
    assert (str(a) < str(b)) == (a < b)
    assert (str(a) == str(b)) == (a == b)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "garbage",
        "1764109800000",
        "1764109800000-0000",
        "1764109800000-0000-",
        "176410980000-0000-n",  # 12 digits
        "17641098000000-0000-n",  # 14 digits
        "1764109800000-000-n",
        "1764109800000-00000-n",
        "1764109800000-zzzz-n",
        "abcdefghijklm-0000-n",
        "1764109800000-0x01-n",  # hex prefix: not the canonical form
        "1764109800000-000A-n",  # upper case hex sorts differently from the stamp
        " 764109800000-0001-n",  # whitespace int() would accept
        "+764109800000-0001-n",  # sign
        "17641098000_0-0001-n",  # digit separator
        "1764109800000- 001-n",
        "١٧٦٤١٠٩٨٠٠٠٠٠-0001-n",  # non-ASCII digits
    ],
)
def test_parse_rejects_junk(junk):
    with pytest.raises(ValueError):
        Stamp.parse(junk)
    assert not is_stamp(junk)


@pytest.mark.parametrize("not_text", [None, 5, b"1764109800000-0000-n", ["1764109800000-0000-n"]])
def test_parse_rejects_non_strings_with_value_error(not_text):
    with pytest.raises(ValueError):
        Stamp.parse(not_text)
    assert not is_stamp(not_text)


def test_is_stamp_accepts_valid():
    assert is_stamp("1764109800000-0000-dev-1")


def test_tick_uses_wall_clock_when_it_moves():
    clock = HybridLogicalClock("n", now_ms=sequence([1000, 2000]))
    assert clock.tick() == Stamp(1000, 0, "n")
    assert clock.tick() == Stamp(2000, 0, "n")


def test_ticks_strictly_increase_with_frozen_clock():
    clock = HybridLogicalClock("n", now_ms=frozen(5000))
    got = [clock.tick() for _ in range(50)]
    assert got == sorted(got)
    assert len(set(got)) == 50
    assert got[-1] == Stamp(5000, 49, "n")


def test_ticks_strictly_increase_when_wall_clock_goes_backwards():
    clock = HybridLogicalClock("n", now_ms=sequence([9000, 8000, 7000, 9000, 9500]))
    got = [clock.tick() for _ in range(5)]
    assert all(a < b for a, b in zip(got, got[1:]))
    assert got[1] == Stamp(9000, 1, "n")
    assert got[-1] == Stamp(9500, 0, "n")


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=40))
def test_ticks_monotonic_for_any_wall_clock(walls):
    clock = HybridLogicalClock("n", now_ms=sequence(walls))
    got = [clock.tick() for _ in walls]
    assert all(a < b for a, b in zip(got, got[1:]))
    assert all(str(a) < str(b) for a, b in zip(got, got[1:]))
    assert got[-1].wall_ms >= max(walls)


def test_counter_overflow_keeps_string_form_valid_and_sorted():
    # A frozen (or far behind) wall clock: the counter runs past its four hex digits.
    clock = HybridLogicalClock("n", now_ms=frozen(1000), last="0000000001000-ffe0-n")
    previous = clock.tick()
    for _ in range(0x40):
        current = clock.tick()
        text = str(current)
        assert previous < current
        assert Stamp.parse(text) == current, text
        previous = current
    assert str(Stamp(1000, 0xFFFF, "n")) < str(previous)


def test_receive_remote_at_max_counter_stays_valid():
    clock = HybridLogicalClock("n", now_ms=frozen(1000))
    remote = Stamp(1000, 0xFFFF, "m")
    got = clock.receive(remote)
    assert got > remote
    assert Stamp.parse(str(got)) == got
    assert str(got) > str(remote)


def test_receive_moves_past_remote_in_the_future():
    clock = HybridLogicalClock("n", now_ms=frozen(1000))
    got = clock.receive("0000000009000-0007-m")
    assert got == Stamp(9000, 8, "n")
    nxt = clock.tick()
    assert nxt > got and nxt == Stamp(9000, 9, "n")


def test_receive_old_remote_still_advances_local():
    clock = HybridLogicalClock("n", now_ms=sequence([5000, 5000]))
    first = clock.tick()
    got = clock.receive(Stamp(10, 3, "m"))
    assert got > first and got == Stamp(5000, 1, "n")


@given(stamps, st.integers(0, MAX_WALL - 1), st.lists(st.integers(0, MAX_WALL - 1), max_size=5))
def test_receive_is_greater_than_remote_and_everything_before(remote, now, before):
    clock = HybridLogicalClock("local", now_ms=sequence([*before, now, now]))
    seen = [clock.tick() for _ in before]
    got = clock.receive(remote)
    assert got > remote
    assert all(got > s for s in seen)
    assert got.node == "local"
    assert clock.last == got
    assert clock.tick() > got


def test_last_restored_from_string():
    clock = HybridLogicalClock("n", now_ms=frozen(10), last="0000000005000-0003-n")
    assert clock.last == Stamp(5000, 3, "n")
    assert clock.tick() == Stamp(5000, 4, "n")


def test_ties_broken_by_node():
    assert Stamp(1, 0, "a") < Stamp(1, 0, "b")
    assert str(Stamp(1, 0, "a")) < str(Stamp(1, 0, "b"))


def test_ticks_from_many_threads_are_unique():
    clock = HybridLogicalClock("n", now_ms=frozen(42))
    out: list[Stamp] = []
    lock = threading.Lock()

    def work():
        mine = [clock.tick() for _ in range(500)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 2000
