"""The local report store publishes atomically with private modes, and never writes outside its root."""

import os
import stat
import time
from datetime import date
from pathlib import Path

import pytest

from esg_assets.core.file_names import check_file_name, ratings_file_name, summary_file_name
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.s3 import S3Options
from esg_assets.lib.report_store.store import ReportStore, report_store_for

pytestmark = pytest.mark.unit

NAME = "FirmESGRatings_20261125.csv.enc"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def everything_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def store(tmp_path) -> LocalReportStore:
    return LocalReportStore(tmp_path / "reports")


def publish(store, name: str, data: bytes) -> None:
    with store.publish(name) as file:
        file.write(data)


def test_publish_then_open(store):
    publish(store, NAME, b"encrypted bytes")
    with store.open(NAME) as file:
        assert file.read() == b"encrypted bytes"
    assert store.exists(NAME)
    assert store.uri(NAME) == (store.root / NAME).as_uri()
    assert store.uri(NAME).startswith("file:///")


def test_root_is_0700_and_files_0600_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        store = LocalReportStore(tmp_path / "deep" / "reports")
        publish(store, NAME, b"x")
    finally:
        os.umask(previous)
    assert mode(store.root) == 0o700
    assert mode(store.root / NAME) == 0o600


def test_reading_does_not_create_the_root(store):
    assert not store.exists(NAME)
    assert store.list() == []
    with pytest.raises(FileNotFoundError):
        store.open(NAME)
    assert not store.root.exists()


def test_nothing_appears_under_the_final_name_while_writing(store):
    with store.publish(NAME) as file:
        file.write(b"partial")
        assert not (store.root / NAME).exists()
        [temporary] = os.listdir(store.root)
        assert temporary.startswith(".") and temporary != NAME
    assert os.listdir(store.root) == [NAME]


def test_republish_replaces_the_file(store):
    publish(store, NAME, b"first")
    publish(store, NAME, b"second")
    assert store.open(NAME).read() == b"second"
    assert os.listdir(store.root) == [NAME]


def test_an_exception_mid_write_keeps_the_old_file_and_leaves_no_temporary_file(store):
    publish(store, NAME, b"yesterday's good file")
    with pytest.raises(RuntimeError), store.publish(NAME) as file:
        file.write(b"half of the new")
        raise RuntimeError("the source failed")
    assert store.open(NAME).read() == b"yesterday's good file"
    assert os.listdir(store.root) == [NAME]


def test_publishing_removes_what_a_killed_writer_left_of_the_same_file(store):
    publish(store, NAME, b"first")
    abandoned = store.root / f".{NAME}.k1ll3d.tmp"  # a run killed with -9 while writing the file
    abandoned.write_bytes(b"half")
    os.utime(abandoned, (time.time() - 2 * 3600,) * 2)
    live = store.root / f".{NAME}.wr1t1ng.tmp"  # another writer, still writing
    live.write_bytes(b"half")
    other = store.root / ".FirmESGRatings_20261119.csv.enc.0ld.tmp"  # another file's: not ours to judge
    other.write_bytes(b"half")
    os.utime(other, (time.time() - 2 * 3600,) * 2)

    publish(store, NAME, b"second")

    assert sorted(os.listdir(store.root)) == sorted([NAME, live.name, other.name])


def test_an_exception_on_first_publication_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.publish(NAME) as file:
        file.write(b"half")
        raise RuntimeError("the source failed")
    assert os.listdir(store.root) == []


def test_list_delete_and_prefix(store):
    for name in ["FirmESGRatings_20261124.csv.enc", NAME, "FirmESGSummary_20261125.json"]:
        publish(store, name, b"x")
    (store.root / "subdir").mkdir()
    with store.publish("in-progress") as file:
        file.write(b"x")
        assert "in-progress" not in store.list()  # its temporary file is hidden
    assert store.list("FirmESGRatings_") == ["FirmESGRatings_20261124.csv.enc", NAME]
    assert store.list() == [
        "FirmESGRatings_20261124.csv.enc",
        NAME,
        "FirmESGSummary_20261125.json",
        "in-progress",
    ]
    store.delete(NAME)
    store.delete(NAME)  # deleting what is not there is not an error
    assert not store.exists(NAME)


def test_a_set_is_stored_in_private_folders_listed_and_removed_with_them(tmp_path):
    store = LocalReportStore(tmp_path / "reports")
    nested = "FirmESGRatings_20261120.versions/v1/FirmESGRatings_20261120.csv.enc"
    with store.publish(nested) as sink:
        sink.write(b"set")
    with store.publish(NAME) as sink:
        sink.write(b"top")
    folder = store.root / "FirmESGRatings_20261120.versions"
    assert (
        stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE((folder / "v1").stat().st_mode) == 0o700
    )
    assert store.list("FirmESGRatings_20261120.versions/") == [nested]
    assert nested in store.list() and NAME in store.list()
    with store.open(nested) as source:
        assert source.read() == b"set"
    store.delete(nested)
    assert not folder.exists()  # emptied folders go with their last file
    assert store.list() == [NAME]


BAD_NAMES = [
    "../escape",
    "..",
    ".",
    "",
    "a/b/c/d",  # folders go two deep at most: <versions folder>/<version>/<file>
    "a//b",
    "a/../b",
    "a/",
    "/etc/passwd",
    "a\\b",
    ".hidden",
    "a..b",
    "x\x00y",
    "a b",
    "é.csv",
    "name\n",
    "x" * 201,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_by_every_operation(store, tmp_path, name):
    with pytest.raises(ValueError, match="invalid file name"), store.publish(name) as file:
        file.write(b"x")
    for operation in (store.open, store.exists, store.uri, store.delete):
        with pytest.raises(ValueError, match="invalid file name"):
            operation(name)
    assert everything_under(tmp_path) == []


def test_valid_names():
    for name in [NAME, "a", "A-b_c.d", "x" * 200, "FirmESGSummary_20261125.csv.enc"]:
        assert check_file_name(name) == name


def test_local_store_satisfies_the_protocol(store):
    assert isinstance(store, ReportStore)


def test_file_names():
    assert ratings_file_name(date(2026, 11, 25)) == "FirmESGRatings_20261125.csv.enc"
    assert ratings_file_name(date(2027, 1, 5)) == "FirmESGRatings_20270105.csv.enc"
    assert summary_file_name(date(2026, 11, 25), "json") == "FirmESGSummary_20261125.json"
    assert summary_file_name(date(2026, 11, 25), "csv.enc") == "FirmESGSummary_20261125.csv.enc"
    for bad in ["", ".csv", "c/sv", "csv.", "../x"]:
        with pytest.raises(ValueError, match="extension"):
            summary_file_name(date(2026, 11, 25), bad)


def test_store_for_file_uri_and_paths(tmp_path, monkeypatch):
    assert report_store_for(f"file://{tmp_path}/out").root == tmp_path / "out"
    assert report_store_for(f"file://localhost{tmp_path}/out").root == tmp_path / "out"
    assert report_store_for(f"file:{tmp_path}/out").root == tmp_path / "out"
    assert report_store_for(f"file://{tmp_path}/with%20space").root == tmp_path / "with space"
    assert report_store_for(str(tmp_path / "plain")).root == tmp_path / "plain"
    monkeypatch.chdir(tmp_path)
    assert report_store_for("./var/reports").root == tmp_path / "var" / "reports"
    assert report_store_for("relative").root == tmp_path / "relative"


def test_store_for_s3_names_bucket_and_prefix():
    store = report_store_for("s3://esg-reports/daily/ratings/", S3Options(endpoint_url="http://127.0.0.1:9"))
    assert (store.bucket, store.prefix) == ("esg-reports", "daily/ratings/")
    name = "FirmESGRatings_20261125.csv.enc"
    assert store.uri(name) == f"s3://esg-reports/daily/ratings/{name}"
    assert report_store_for("s3://esg-reports", S3Options(endpoint_url="http://127.0.0.1:9")).prefix == ""


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/x",
        "gs://bucket/x",
        "file://otherhost/x",
        "file:relative",
        "",
        "s3://b/x",
        "s3://bucket/../x",
    ],  # fmt: skip
)
def test_store_for_anything_else_names_the_setting_and_the_value(uri):
    with pytest.raises(ValueError) as caught:
        report_store_for(uri)
    assert "ESG_OUTPUT_URI" in str(caught.value)
    assert repr(uri) in str(caught.value) or uri == ""


def test_a_symbolic_link_planted_in_the_store_is_never_followed(tmp_path):
    store = LocalReportStore(tmp_path / "reports")
    with store.publish(NAME) as sink:
        sink.write(b"top")
    outside = tmp_path / "elsewhere"
    (outside / "projectA").mkdir(parents=True)
    (outside / "projectA" / "keep.txt").write_text("not the store's")
    (store.root / "FirmESGRatings_20261120.versions").symlink_to(outside)
    nested = "FirmESGRatings_20261120.versions/projectA/FirmESGRatings_20261120.csv.enc"
    for operation in (
        lambda: store.publish(nested).__enter__(),
        lambda: store.delete_folder("FirmESGRatings_20261120.versions/projectA"),
        lambda: store.delete(nested),
        lambda: store.open(nested),
        lambda: store.subfolders("FirmESGRatings_20261120.versions"),
    ):
        with pytest.raises(OSError, match="may be a symbolic link"):
            operation()
    assert (outside / "projectA" / "keep.txt").read_text() == "not the store's"
    assert sorted(p.name for p in outside.iterdir()) == ["projectA"]
