import pytest

from xenha.ocf.deadline import Deadline, DeadlineExceeded


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_deadline_ends_before_pacemakers_timeout():
    clock = Clock()
    deadline = Deadline.from_timeout_ms(20000, default_seconds=60, clock=clock)
    assert deadline.total == 20
    # 5% margin: 1 s of a 20 s timeout is kept for logging and exiting.
    assert deadline.remaining() == pytest.approx(19.0)


def test_default_when_pacemaker_gave_no_timeout():
    assert Deadline.from_timeout_ms(None, default_seconds=90, clock=Clock()).total == 90


def test_margin_bounds():
    assert Deadline.margin_for(1) == 0.2
    assert Deadline.margin_for(400) == 2.0


def test_step_timeouts_respect_reserve_and_run_out():
    clock = Clock()
    deadline = Deadline(21, clock)  # margin 1.05 s
    assert deadline.timeout(5) == 5
    assert deadline.timeout(None, reserve=10) == pytest.approx(9.95)
    clock.now += 15
    assert deadline.timeout(10) == pytest.approx(4.95)
    with pytest.raises(DeadlineExceeded):
        deadline.timeout(10, reserve=5)
    clock.now += 10
    assert deadline.expired()
    assert deadline.remaining() == 0.0
