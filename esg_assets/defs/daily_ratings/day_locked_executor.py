"""An executor that holds the run's day lock in the run's own process while its steps run elsewhere.

With the in-process executor every step runs in the run's process, which takes the day's lock when it
initialises its resources (day_run_lock.py). With an executor that runs each step in a process of its own
(multiprocess, Kubernetes jobs, Docker, Celery), no process lives as long as the run but the run worker: this
wrapper takes the day's lock there, for the whole execution, and each step's ``day_run_lock`` sees its own
run holding it and goes on (a step of another run is refused as before).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dagster import Executor, ExecutorDefinition, InitExecutorContext

from esg_assets.core.keys import PARTITION_TAG
from esg_assets.defs.daily_ratings.day_run_lock import hold_day


class _DayLockedExecutor(Executor):
    def __init__(self, inner: Executor, warehouse_path: str):
        self._inner = inner
        self._warehouse_path = warehouse_path

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        run = plan_context.dagster_run
        partition = run.tags.get(PARTITION_TAG)
        if partition is None:  # not a run of one day
            yield from self._inner.execute(plan_context, execution_plan)
            return
        folder = Path(self._warehouse_path).absolute().parent
        with hold_day(folder, partition, run, plan_context.instance, plan_context.log):
            yield from self._inner.execute(plan_context, execution_plan)


def day_locked(inner: ExecutorDefinition, warehouse_path: Callable[[], str]) -> ExecutorDefinition:
    """``inner`` (same name, configuration and requirements) with the day's lock held by the run worker.

    ``warehouse_path`` says where the day locks live (beside the warehouse); it is asked when a run starts,
    in the run worker's environment.
    """

    def create(init_context: InitExecutorContext) -> Executor:
        return _DayLockedExecutor(inner.executor_creation_fn(init_context), warehouse_path())

    return ExecutorDefinition(
        name=inner.name,
        config_schema=inner.config_schema,
        requirements=inner.get_requirements,
        executor_creation_fn=create,
        description=f"{inner.description or inner.name}; the run worker holds the day's lock",
    )
