"""Stop requests: noted inside the loop, raised outside it, handed on to a scheduler's handler."""

from __future__ import annotations

import os
import signal

import pytest

from ner.distributed import Env
from ner.run.preemption import Interrupted, StopRequests


def test_inside_the_loop_a_signal_is_only_noted_until_the_step_boundary():
    with StopRequests() as stop:
        stop.signals_deferred = True
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
            stop.signals_deferred = True
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.agreed(Env()) == 0
    finally:
        signal.signal(signal.SIGINT, previous)


def test_handlers_are_restored_and_an_earlier_handler_gets_the_signal_after_us():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with StopRequests() as stop:
            stop.signals_deferred = True
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
            stop.signals_deferred = True
            os.kill(os.getpid(), signal.SIGINT)
            error = stop.interrupted("after step 1")
        error.hand_over()  # would raise KeyboardInterrupt if it called default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_a_signal_during_an_epochs_evaluation_stops_there_recording_the_whole_epoch(
    tmp_path, monkeypatch
):
    # The signal arrives while epoch 1 is being evaluated and saved: the run stops after it
    # (30 steps: 240 sentences, batch 8), and its record counts that epoch as done, as a signal
    # after the epoch's last step would.
    from conftest import QUICK, train_in_process

    from ner.report.runlog import RunLog

    save = RunLog.save

    def save_then_signal(self):
        save(self)
        os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(RunLog, "save", save_then_signal)
    with pytest.raises(Interrupted) as stopped:
        train_in_process(tmp_path / "run", QUICK)
    assert stopped.value.facts == {"global_step": 30, "epoch": 1.0}
    assert "after step 30 (epoch 1 of 2)" in str(stopped.value)


def test_an_interruption_survives_being_copied_or_pickled():
    # The default Exception copy rebuilds from the message alone: Interrupted(message) raised
    # "missing 1 required positional argument: 'where'" in place of the interruption (seen once
    # in the double-SIGTERM test, on its way out of Hydra).
    import copy
    import pickle
    import signal as signals

    from ner.run.preemption import Interrupted

    e = Interrupted(signals.SIGTERM, "after step 3 (epoch 1 of 2)", global_step=3)
    for duplicate in (copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))):
        c = duplicate(e)
        assert (str(c), c.signum, c.record()) == (str(e), e.signum, e.record())
