"""Stopping training cleanly on SIGTERM and SIGINT.

A cluster scheduler (SLURM, Kubernetes) sends SIGTERM some time before it kills a job; a user
presses Ctrl-C (SIGINT). While `StopSignals` is active the first such signal only sets a flag:
the trainer finishes the step it is in, writes a checkpoint, records the stop in metrics.jsonl
and raises `TrainingStopped`, whose exit code is the shell's 128 + signal number (143 for
SIGTERM, 130 for SIGINT). A second signal ends the process at once with that code (files being
written are temporaries, so nothing already on disk is damaged).

Under torchrun the ranks may receive the signal at different moments; `requested` combines the
flags of all ranks after every step, so that every rank stops after the same step.
"""

from __future__ import annotations

import os
import signal
import threading

import torch

from genmodels.training import distributed

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """`with StopSignals() as stop:` ... `if stop.requested(device): ...`; the previous handlers
    are restored on exit. Outside the main thread (where Python cannot install handlers) it does
    nothing and never requests a stop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second signal: no more waiting
            os.write(2, f"\n{signal.Signals(signum).name} again: exiting now, without a final checkpoint\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        os.write(2, f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
                    f"(send it again to exit at once)\n".encode())

    def requested(self, device: torch.device) -> bool:
        """Whether a stop was asked for, on this rank or (under torchrun) any other: every rank must
        call this after every step (it is a collective operation when distributed)."""
        par = distributed.current()
        if not par.enabled:
            return self.signum is not None
        signum = distributed.max_over_ranks(self.signum or 0, device)
        if signum and self.signum is None:
            self.signum = signum  # asked on another rank: this rank stops and reports the same way
        return signum > 0

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
