"""A publisher process that kills itself with SIGKILL at a chosen point of publishing a day's set.

    python -m esg_assets_tests.support.killed_publisher OUTPUT KEY_FILE AUDIT_DIR POINT

POINT is where the process dies (see ``POINTS``); ``none`` publishes to the end. The set is ``publish_day``'s
for DAY with 250 accounts under run ``run-killed``, so it differs from the 300-account set published before.
"""

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from esg_assets.core.file_names import manifest_file_name, ratings_file_name
from esg_assets.lib.audit.log import DONE, INTENT, AuditLog
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets_tests.support.pipeline_runs import DAY
from esg_assets_tests.support.published_day import publish_day

POINTS = (
    "writing-ratings",  # half-way through the staged ratings file
    "staged",  # every file staged, nothing audited
    "intent-recorded",  # the intent of every file and of the commit audited, the manifest not written
    "writing-manifest",  # the new manifest written to its temporary file, not renamed over the live one
    "committed",  # the manifest renamed into place, the done record not written
    "removing-old-set",  # done recorded, half-way through removing the replaced set
)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KilledStore(LocalReportStore):
    def __init__(self, root, point: str):
        super().__init__(root)
        self.point = point

    @contextmanager
    def publish(self, name: str):
        with super().publish(name) as sink:
            yield sink
            if self.point == "writing-ratings" and name.endswith("/" + ratings_file_name(DAY)):
                sink.flush()
                die()
            if self.point == "writing-manifest" and name == manifest_file_name(DAY):
                sink.flush()
                os.fsync(sink.fileno())
                die()

    def delete_folder(self, name: str) -> None:
        if self.point == "removing-old-set":
            self.delete(self.list(name + "/")[0])
            die()
        super().delete_folder(name)


class KilledAuditLog(AuditLog):
    def __init__(self, directory, point: str):
        super().__init__(directory)
        self.point = point

    def append(self, event, actor):
        if self.point == "staged" and event.outcome == INTENT:
            die()
        if self.point == "committed" and event.outcome == DONE:
            die()
        record = super().append(event, actor)
        if (
            self.point == "intent-recorded"
            and event.outcome == INTENT
            and event.file == manifest_file_name(DAY)
        ):
            die()
        return record


def main(output: str, key_file: str, audit_dir: str, point: str) -> None:
    store = KilledStore(Path(output), point)
    audit = KilledAuditLog(Path(audit_dir), point)
    publish_day(
        store, key_file_keyring(load_key_ring(key_file)), audit, DAY, accounts=250, run_id="run-killed"
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
