"""An executor without kernels, for the scheduling and state tests (imported by them)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

from nb2pkg.pipeline.artifacts import save_outputs
from nb2pkg.pipeline.executor import StageFailure, StageOutcome


class FakeExecutor:
    """Runs a stage by sleeping and saving its declared outputs; fails the stages in ``fail``.

    ``actions`` maps a stage to a function of its ``StageJob``, called before the outputs are
    saved: what the stage's code would do (read and write data files).
    """

    def __init__(self, pipeline_text: str, fail=(), seconds=0.05, actions=None):
        import yaml

        self.outputs = {s["name"]: s.get("outputs", []) for s in yaml.safe_load(pipeline_text)["stages"]}
        self.fail = set(fail)
        self.actions = dict(actions or {})
        self.seconds = seconds
        self.order: list[str] = []
        self.prepared: list[str] = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def check(self, kernel):
        pass

    def prepare(self, job):
        self.prepared.append(job.stage)
        return True

    def release(self, stage):
        pass

    def close(self):
        pass

    def submit(self, job):
        future: Future = Future()

        def work():
            with self.lock:
                self.running += 1
                self.max_running = max(self.max_running, self.running)
                self.order.append(job.stage)
            time.sleep(self.seconds)
            with self.lock:
                self.running -= 1
            if job.stage in self.fail:
                failure = StageFailure(job.stage, str(job.output), "RuntimeError: boom", 3, 7)
                future.set_result(StageOutcome(job.stage, False, self.seconds, str(job.output), failure))
                return
            if job.stage in self.actions:
                try:
                    self.actions[job.stage](job)
                except Exception as exc:  # reported like a failing cell, never a hung future
                    failure = StageFailure(job.stage, str(job.output), repr(exc))
                    future.set_result(StageOutcome(job.stage, False, self.seconds,
                                                   str(job.output), failure))
                    return
            values = {name: job.parameters.get("n", 1) for name in self.outputs[job.stage]}
            save_outputs(job.parameters["nb2pkg_outputs"], list(values), values, stage=job.stage)
            future.set_result(StageOutcome(job.stage, True, self.seconds, str(job.output)))

        threading.Thread(target=work).start()
        return future
