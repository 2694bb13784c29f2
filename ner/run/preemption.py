"""Stop when asked: SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 end a run at an optimizer-step boundary.

Schedulers ask before they kill: Slurm sends SIGTERM at preemption and cancellation, and the
signal of `sbatch --signal` before the time limit (SIGUSR1 by our documented flags, SIGUSR2 under
submitit); Kubernetes sends SIGTERM; a terminal sends SIGINT. The signal reaches the ranks at
different moments (torchrun's agent forwards it, Slurm sends it to every task), so inside the
training loop the handler only notes it, and at every optimizer-step boundary the ranks agree on
whether any of them was asked to stop: one all-reduce of an int on the CPU, started at one
boundary and read at the next, so that it overlaps a step instead of holding the ranks' host
threads in lockstep (with nccl nothing else does). So all ranks stop after
the same step, at most one step after the signal, write one checkpoint there and leave with
`Interrupted`; the entry point records the run as interrupted and exits with EXIT_INTERRUPTED.
Nothing is lost: the same command resumes after the step that was completed.

Outside the loop (preparing data, the final test evaluation and reports) there is no step to
finish, so the signal raises `Interrupted` at once; the last checkpoint is intact.

A handler installed before ours (submitit's, which requeues the Slurm job) is handed the signal
after the checkpoint is written (`Interrupted.hand_over`), so `hydra/launcher=slurm` requeues a
preempted job. Later copies of the signal are ignored: torchrun's agent forwards the one the
terminal already sent. On the command line, whose process ends with the run, they stay ignored
until it exits (`StopRequests.process_ends_with_run`), so a second Ctrl-C or a repeated SIGTERM
cannot turn the exit status 75 of a saved run into death by that signal; elsewhere (a notebook, a
test) leaving the `with` block gives back the handlers that were there before.

Once the run's end is being written (ner/finish.py: result.json), a signal is only noted: the
run is finished, exits 0, and nothing is recorded as interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from ner import distributed

# EX_TEMPFAIL (sysexits.h): a temporary failure, run again. Interrupted runs exit with it.
EXIT_INTERRUPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class Interrupted(Exception):
    """The run stopped on a signal; `where` (in the message) says at which point."""

    def __init__(self, signum: int, where: str, previous: Any = None, **facts):
        self.signum = signum
        self.signal = signal.Signals(signum).name
        self.facts = facts  # global_step, epoch, checkpoint: for the run's record
        self._previous = previous
        self._where = where
        super().__init__(f"interrupted by {self.signal} {where}")

    def __reduce__(self):
        # Copied or pickled (a copy of the exception on its way out of Hydra's job handling), it
        # is rebuilt from its own arguments: the default rebuilds from the message alone, which
        # raised a TypeError in place of the interruption.
        return (_rebuild_interrupted, (self.signum, self._where, self.facts))

    def record(self) -> dict:
        return {"signal": self.signal, "message": str(self), **self.facts}

    def hand_over(self) -> None:
        """Give the signal to the handler that was installed before ours, if it is a function."""
        handler: Callable | Any = self._previous
        if callable(handler) and handler is not signal.default_int_handler:
            handler(self.signum, None)


def _rebuild_interrupted(signum: int, where: str, facts: dict) -> Interrupted:
    return Interrupted(signum, where, **facts)


class StopRequests:
    """Notes stop signals while installed (`with`); see the module docstring.

    `signals_deferred` is True inside the training loop: a signal is only noted, and `agreed(env)` at
    the next step boundary tells every rank to stop. Otherwise a signal raises at once.
    """

    # Set by the command line (ner/run/cli.py): after a stop signal the process only exits, so
    # every later copy is ignored to the end (see the module docstring).
    process_ends_with_run = False

    def __init__(self) -> None:
        self.signum = 0
        self.signals_deferred = False
        self.previous: dict[int, Any] = {}
        self._question: Callable[[], int] | None = None  # the agreement started last boundary

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # signals go to the main thread
            for s in SIGNALS:
                # A signal ignored when we start (a shell's `cmd &` ignores SIGINT) stays ignored.
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            if self.signum and self.process_ends_with_run:
                # The process is on its way out. SIG_IGN, not our handler: the interpreter's
                # finalization puts SIG_DFL back in place of Python handlers, before the rest
                # of its teardown (and torch's), where a copy would kill the process.
                handler = signal.SIG_IGN
            signal.signal(s, handler)

    def await_agreement(self) -> None:
        """Leaving the loop: wait for the agreement still under way (every rank started it)."""
        if self._question is not None:
            self._question()
            self._question = None

    def _handle(self, signum: int, frame) -> None:
        if self.signum:
            return
        self.signum = signum
        if not self.signals_deferred:
            raise self.interrupted("before the first step or after the last one")

    def interrupted(self, where: str, signum: int | None = None, **facts) -> Interrupted:
        signum = signum or self.signum
        return Interrupted(signum, where, self.previous.get(signum), **facts)

    def agreed(self, env: distributed.Env) -> int:
        """The signal any rank had been sent by the previous boundary (0: none); the same answer
        on every rank. A collective: every rank calls it at every boundary."""
        if not env.distributed:
            return self.signum
        answer = self._question() if self._question is not None else 0
        self._question = distributed.all_reduce_max_int_async(self.signum, env)
        return answer
