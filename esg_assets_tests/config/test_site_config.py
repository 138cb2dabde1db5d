"""Who may read is decided by the host's root-owned site configuration, not by the caller's environment: a
caller who sets the allow-list and the audit directory to their own is still judged, and recorded, by the
site's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esg_assets.config import site_config
from esg_assets.config.environment import now
from esg_assets.config.resources import dagster_resources
from esg_assets.config.site_config import SiteConfigError
from esg_assets.core import settings
from esg_assets_tests.support.decrypting import ME, audit

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(os.geteuid() != 0, reason="the site configuration must be owned by root"),
]


def site_file(folder: Path, env: dict, **overrides: str) -> Path:
    """A site configuration, as /etc/esg/esg.env is: root-owned, mode 0640."""
    path = folder / "site" / "esg.env"
    path.parent.mkdir(mode=0o755, exist_ok=True)
    path.write_text("".join(f"{name}={value}\n" for name, value in {**env, **overrides}.items()))
    path.chmod(0o640)
    return path


def test_the_callers_allow_list_and_audit_directory_are_ignored(decryptable_day, decrypt, tmp_path):
    _, env = decryptable_day
    site = site_file(tmp_path, env, ESG_AUTHORIZED_READERS="alice")
    own_audit = tmp_path / "my-own-audit"
    own_audit.mkdir()
    code, out, err = decrypt(
        {
            **env,
            "ESG_SITE_CONFIG": str(site),
            "ESG_AUTHORIZED_READERS": ME,  # the caller lists themselves ...
            "ESG_AUDIT_LOG_DIR": str(own_audit),  # ... and points the audit log at a folder of their own
        }
    )
    assert code == 3, err
    assert f"user {ME} is not in ESG_AUTHORIZED_READERS" in err
    assert out == b"" and not (tmp_path / "out.csv").exists()
    assert list(own_audit.iterdir()) == []
    record = audit(env)[-1]  # recorded in the site's audit log
    assert (record["action"], record["outcome"], record["user"]) == ("decrypt", "denied", ME)
    # The same site file listing the caller lets them read.
    site_file(tmp_path, env, ESG_AUTHORIZED_READERS=ME)
    code, _, err = decrypt({**env, "ESG_SITE_CONFIG": str(site), "ESG_AUTHORIZED_READERS": "nobody-else"})
    assert code == 0, err


def test_a_setting_missing_from_the_site_file_is_not_taken_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ESG_SITE_CONFIG", str(site_file(tmp_path, {"ESG_OUTPUT_URI": "/srv/esg/reports"})))
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", "mallory")
    monkeypatch.setenv("ESG_OUTPUT_URI", "/tmp/elsewhere")
    assert now(settings.OUTPUT_URI) == "/srv/esg/reports"
    assert now(settings.AUTHORIZED_READERS) == ""  # the default: nobody may read
    monkeypatch.setenv("ESG_MAX_IN_FLIGHT", "7")
    assert now(settings.MAX_IN_FLIGHT) == "7"  # not an access setting: the environment's


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda path: path.chmod(0o662),
            r"site configuration .* can be changed by group or others \(mode 0662\)",
        ),
        (lambda path: os.chown(path, 65534, -1), r"site configuration .* is owned by uid 65534, not root"),
        (
            lambda path: path.parent.chmod(0o777),
            r"the folder of the site configuration .*/site can be changed",
        ),
        (lambda path: path.unlink(), r"site configuration .*: No such file or directory"),
        (lambda path: (path.unlink(), path.mkdir()), r"site configuration .* is not a regular file"),
    ],
    ids=["group-writable", "not-root", "folder-writable", "missing", "a-directory"],
)
def test_a_site_file_others_could_change_or_that_is_missing_is_refused(
    tmp_path, monkeypatch, damage, message
):
    path = site_file(tmp_path, {"ESG_AUTHORIZED_READERS": "alice"})
    damage(path)
    monkeypatch.setenv("ESG_SITE_CONFIG", str(path))
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", "mallory")
    with pytest.raises(SiteConfigError, match=message):
        now(settings.AUTHORIZED_READERS)


def test_a_symlinked_site_file_is_refused(tmp_path, monkeypatch):
    path = site_file(tmp_path, {"ESG_AUTHORIZED_READERS": "alice"})
    link = tmp_path / "site" / "link.env"
    link.symlink_to(path)
    monkeypatch.setenv("ESG_SITE_CONFIG", str(link))
    with pytest.raises(SiteConfigError, match="is not a regular file"):
        now(settings.AUTHORIZED_READERS)


def test_the_hosts_own_file_wins_over_the_variable(tmp_path, monkeypatch):
    """Where /etc/esg/esg.env exists, ESG_SITE_CONFIG cannot point elsewhere (the fixed path moved here)."""
    host_file = site_file(tmp_path, {"ESG_AUTHORIZED_READERS": "alice"})
    monkeypatch.setattr(site_config, "SITE_CONFIG", host_file)
    callers_own = tmp_path / "mine.env"
    callers_own.write_text("ESG_AUTHORIZED_READERS=mallory\n")
    monkeypatch.setenv("ESG_SITE_CONFIG", str(callers_own))
    assert now(settings.AUTHORIZED_READERS) == "alice"


def test_an_untrusted_site_file_refuses_retention_but_leaves_the_code_location_up(tmp_path, monkeypatch):
    path = site_file(tmp_path, {"ESG_RETENTION_MIN_DAYS": "2555"})
    path.chmod(0o662)  # others could lower the floor
    monkeypatch.setenv("ESG_SITE_CONFIG", str(path))
    built = dagster_resources()  # the code location loads: its alerting sensors keep running
    floor = built["retention_floor"].resource_fn(None)
    with pytest.raises(ValueError, match=r"site configuration .* can be changed by group or others"):
        floor.days()  # and every real retention run is refused, deleting nothing
