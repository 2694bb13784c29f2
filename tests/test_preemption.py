"""Stop requests: noted inside the loop, raised outside it, handed on to a scheduler's handler."""

from __future__ import annotations

import os
import signal

import pytest

from ner.distributed import Env
from ner.preemption import Interrupted, StopRequests


def test_inside_the_loop_a_signal_is_only_noted_until_the_step_boundary():
    with StopRequests() as stop:
        stop.deferred = True
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # a second copy (torchrun forwards) changes nothing
        assert stop.agreed(Env()) == signal.SIGUSR1
        error = stop.interrupted("after step 7", global_step=7)
    assert str(error) == "interrupted by SIGUSR1 after step 7"
    assert error.record() == {
        "signal": "SIGUSR1",
        "message": "interrupted by SIGUSR1 after step 7",
        "global_step": 7,
    }


def test_outside_the_loop_a_signal_stops_at_once():
    with StopRequests(), pytest.raises(Interrupted, match="interrupted by SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the handler raises before this line")


def test_a_signal_ignored_at_start_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for `python -m ner.train &`
    try:
        with StopRequests() as stop:
            stop.deferred = True
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.agreed(Env()) == 0
    finally:
        signal.signal(signal.SIGINT, previous)


def test_handlers_are_restored_and_an_earlier_handler_gets_the_signal_after_us():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with StopRequests() as stop:
            stop.deferred = True
            os.kill(os.getpid(), signal.SIGUSR2)
            error = stop.interrupted("after step 1")
        assert seen == []  # submitit's requeue waits for our checkpoint ...
        error.hand_over()
        assert seen == [signal.SIGUSR2]  # ... and then runs
        os.kill(os.getpid(), signal.SIGUSR2)
        assert seen == [signal.SIGUSR2, signal.SIGUSR2]  # restored after the run
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_the_default_sigint_handler_is_not_handed_the_signal():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with StopRequests() as stop:
            stop.deferred = True
            os.kill(os.getpid(), signal.SIGINT)
            error = stop.interrupted("after step 1")
        error.hand_over()  # would raise KeyboardInterrupt if it called default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
