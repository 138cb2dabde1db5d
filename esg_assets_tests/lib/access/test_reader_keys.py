"""Each authorized reader holds a key of their own: every new file is also encrypted to their RSA public key,
so they decrypt it with their private key and the stock SDK alone; a reader removed from the list cannot
decrypt the files published after the removal; the list is refused when anyone but its owner could have
changed it."""

import json
import os
import threading
from contextlib import contextmanager
from datetime import date

import aws_encryption_sdk
import pytest
from aws_encryption_sdk.exceptions import DecryptKeyError
from aws_encryption_sdk.identifiers import CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dagster import DagsterInstance, materialize

from esg_assets.cli.report import main
from esg_assets.lib.access.reader_keys import ReadersFileError, load_readers, readers_lock
from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, live_file, resources_with_report_store, run_day
from esg_assets_tests.support.published_day import publish_day

BEFORE, AFTER = date(2026, 11, 20), date(2026, 11, 21)


def key_pair(bits: int = 3072) -> tuple[bytes, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return (
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


@pytest.fixture(scope="module")
def keys():
    return {name: key_pair() for name in ("alice", "bob", "carol")}


@pytest.fixture
def service(tmp_path, monkeypatch, keys):
    """The service's key file, an empty readers list and audit log, and the resource the job would use."""
    generate_key_file(tmp_path / "keys" / "esg.key")
    monkeypatch.setenv("ESG_READERS_FILE", str(tmp_path / "etc" / "readers.json"))
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
    (tmp_path / "etc").mkdir()
    for name in ("alice", "bob", "carol"):
        (tmp_path / f"{name}.pub.pem").write_bytes(keys[name][1])
    resource = ReportStoreResource(
        output_uri=f"file://{tmp_path / 'reports'}",
        encryption_key_file=str(tmp_path / "keys" / "esg.key"),
        readers_file=str(tmp_path / "etc" / "readers.json"),
    )
    return resource, LocalReportStore(tmp_path / "reports"), tmp_path


def readers(*args: str) -> int:
    return main(["readers", *args])


def publish(service, day: date, run_id: str):
    resource, store, tmp_path = service
    return publish_day(store, resource.keyring(), tmp_path / "audit", day, accounts=40, run_id=run_id)


def read_as(store, private_key_pem: bytes, name: str, day: date) -> tuple[bytes, dict]:
    """A reader's own program: the manifest, their private key and the stock SDK, nothing of this project."""
    manifest = json.loads((store.root / f"FirmESGRatings_{day:%Y%m%d}.manifest.json").read_bytes())
    entry = next(f for f in manifest["files"] if f["kind"] == "ratings")
    key = RawMasterKey(
        provider_id="esg-readers",
        key_id=name.encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
            wrapping_key=private_key_pem,
            wrapping_key_type=EncryptionKeyType.PRIVATE,
        ),
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    plaintext, header = client.decrypt(source=(store.root / entry["path"]).read_bytes(), key_provider=key)
    return plaintext, header.encryption_context


@pytest.mark.unit
def test_a_reader_decrypts_with_their_own_key_and_a_removed_reader_cannot_decrypt_later_files(
    service, keys, capsys
):
    resource, store, tmp_path = service
    assert readers("add", "--name", "alice", "--public-key", str(tmp_path / "alice.pub.pem")) == 0
    assert readers("add", "--name", "bob", "--public-key", str(tmp_path / "bob.pub.pem")) == 0
    publish(service, BEFORE, "run-before")
    service_copy = live_file(store, resource.keyring(), BEFORE)
    for name in ("alice", "bob"):
        plaintext, context = read_as(store, keys[name][0], name, BEFORE)
        assert plaintext == service_copy
        assert context["partition_day"] == BEFORE.isoformat() and context["kind"] == "ratings"
    with pytest.raises(DecryptKeyError):  # a key never on the list
        read_as(store, keys["carol"][0], "carol", BEFORE)
    with pytest.raises(DecryptKeyError):  # bob's private key passed off under alice's name
        read_as(store, keys["bob"][0], "alice", BEFORE)

    assert readers("remove", "--name", "bob") == 0
    assert "files already published still are" in capsys.readouterr().out
    publish(service, AFTER, "run-after")
    assert read_as(store, keys["alice"][0], "alice", AFTER)[0] == live_file(store, resource.keyring(), AFTER)
    with pytest.raises(DecryptKeyError):
        read_as(store, keys["bob"][0], "bob", AFTER)
    # What bob could read before his removal he still can: published files are not re-encrypted.
    assert read_as(store, keys["bob"][0], "bob", BEFORE)[0] == service_copy

    records = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    changes = [
        (r["action"], r["detail"].split(",")[0]) for r in records if r["action"].startswith("readers_")
    ]
    assert changes == [
        ("readers_add", "reader alice"),
        ("readers_add", "reader bob"),
        ("readers_remove", "reader bob"),
    ]
    assert main(["audit", "verify"]) == 0


@pytest.mark.unit
def test_the_list_shows_names_and_fingerprints_and_refuses_weak_or_foreign_keys(service, capsys):
    _, _, tmp_path = service
    assert readers("add", "--name", "alice", "--public-key", str(tmp_path / "alice.pub.pem")) == 0
    capsys.readouterr()
    assert readers("list") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("alice\tsha256:") and len(line.split("\t")[1]) == len("sha256:") + 64
    (tmp_path / "weak.pem").write_bytes(key_pair(2048)[1])
    (tmp_path / "ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    for key, message in [("weak.pem", "has 2048 bits; at least 3072"), ("ec.pem", "is not an RSA key"),
                         ("junk.pem", "is not a PEM public key")]:  # fmt: skip
        assert readers("add", "--name", "mallory", "--public-key", str(tmp_path / key)) == 1
        assert message in capsys.readouterr().err
    assert readers("add", "--name", "../x", "--public-key", str(tmp_path / "alice.pub.pem")) == 1
    assert readers("remove", "--name", "nobody-here") == 1
    assert [reader.name for reader in load_readers(tmp_path / "etc" / "readers.json")] == ["alice"]


@pytest.mark.unit
def test_a_readers_file_others_could_change_is_refused_and_nothing_is_encrypted(service):
    resource, store, tmp_path = service
    assert readers("add", "--name", "alice", "--public-key", str(tmp_path / "alice.pub.pem")) == 0
    path = tmp_path / "etc" / "readers.json"
    os.chmod(path, 0o666)
    with pytest.raises(ReadersFileError, match="can be written by group or others"):
        resource.keyring()
    os.chmod(path, 0o644)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)  # nobody's: not root, not this service account
        with pytest.raises(ReadersFileError, match="owned by uid 65534"):
            resource.keyring()
        os.chown(path, 0, 0)
    # A key swapped in by hand, its fingerprint left as it was: refused, not encrypted to.
    document = json.loads(path.read_text())
    document["readers"][0]["public_key"] = (tmp_path / "bob.pub.pem").read_text()
    path.write_text(json.dumps(document))
    with pytest.raises(ReadersFileError, match="does not match its fingerprint"):
        resource.keyring()
    assert not store.root.exists()


@pytest.mark.unit
def test_a_broken_readers_list_stops_publishing_but_not_reading_or_verifying(service, monkeypatch, capsys):
    resource, store, tmp_path = service
    assert readers("add", "--name", "alice", "--public-key", str(tmp_path / "alice.pub.pem")) == 0
    publish(service, BEFORE, "run-before")
    (tmp_path / "etc" / "readers.json").write_text("{not json")  # broken after the day was published
    with pytest.raises(ReadersFileError, match="malformed"):
        resource.keyring()  # the next publication stops
    monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{store.root}")
    monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", resource.encryption_key_file)
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", os.environ.get("USER") or __import__("getpass").getuser())
    capsys.readouterr()
    assert main(["verify", "--date", BEFORE.isoformat()]) == 0
    assert main(["decrypt", "--date", BEFORE.isoformat(), "--output", str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").read_bytes() == live_file(store, resource.service_keyring(), BEFORE)
    assert readers("list") == 1 and "malformed" in capsys.readouterr().err  # named, no traceback


@pytest.mark.unit
def test_changes_to_the_list_are_made_one_at_a_time(service):
    _, _, tmp_path = service
    path = tmp_path / "etc" / "readers.json"
    with readers_lock(path):  # another change holding the list
        adding = threading.Thread(
            target=readers, args=("add", "--name", "alice", "--public-key", str(tmp_path / "alice.pub.pem"))
        )
        adding.start()
        adding.join(timeout=0.5)
        assert adding.is_alive() and not path.exists()  # it waits: it does not read a list about to change
    adding.join(timeout=30)
    assert [reader.name for reader in load_readers(path)] == ["alice"]


class RemovingReaderStore(LocalReportStore):
    """A store on which, once the ratings file is staged, an administrator removes bob from the readers."""

    @contextmanager
    def publish(self, name: str):
        with super().publish(name) as sink:
            yield sink
        if name.endswith("/FirmESGRatings_20261120.csv.enc"):
            assert readers("remove", "--name", "bob") == 0


class RemovingReaderResource(ReportStoreResource):
    def store(self):
        return RemovingReaderStore(self.output_uri.removeprefix("file://"))


@pytest.mark.e2e
def test_a_reader_removed_while_a_run_stages_gets_nothing_of_that_run(
    job_environment, tmp_path, monkeypatch, keys
):
    readers_file = tmp_path / "etc" / "readers.json"
    readers_file.parent.mkdir()
    monkeypatch.setenv("ESG_READERS_FILE", str(readers_file))
    for name in ("alice", "bob"):
        (tmp_path / f"{name}.pub.pem").write_bytes(keys[name][1])
    with SandboxServer(SandboxConfig(accounts=30, seed=4, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        for name in ("alice", "bob"):
            assert readers("add", "--name", name, "--public-key", str(tmp_path / f"{name}.pub.pem")) == 0
        resources = resources_with_report_store(RemovingReaderResource)
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                ALL_ASSETS, partition_key=BEFORE.isoformat(), resources=resources, instance=instance,
                raise_on_error=False,
            )  # fmt: skip
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        assert (
            "the readers list changed while this run staged the files"
            in failure.user_failure_data.description
        )
        store = LocalReportStore(paths["output"])
        assert not (paths["output"] / "FirmESGRatings_20261120.manifest.json").exists()  # nothing published
        run_day(BEFORE)  # again, with the list as it is now
    assert read_as(store, keys["alice"][0], "alice", BEFORE)[1]["partition_day"] == BEFORE.isoformat()
    with pytest.raises(DecryptKeyError):
        read_as(store, keys["bob"][0], "bob", BEFORE)
