"""Key files are created private and atomically, rotate without losing old keys, and fail clearly."""

import base64
import json
import os
import re
import stat

import pytest

from esg_assets.lib.crypto.keys import (
    KeyFileError,
    KeyRing,
    UnknownKeyIdError,
    add_key,
    generate_key_file,
    load_key_ring,
)

pytestmark = pytest.mark.unit

KEY_ID_SHAPE = re.compile(r"k-[0-9]{8}-[0-9a-f]{8}")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def write_key_file(path, document, file_mode=0o600) -> None:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    os.chmod(path, file_mode)


def valid_document(key: bytes = b"k" * 32) -> dict:
    return {
        "format": "esg-keyring",
        "version": 1,
        "primary": "k-20261125-00000001",
        "keys": [
            {
                "id": "k-20261125-00000001",
                "created_at": "2026-11-25T00:00:00+00:00",
                "key": base64.b64encode(key).decode(),
            }
        ],
    }


@pytest.fixture
def open_umask():
    """A umask of 0: whatever mode a file ends up with is the mode the code asked for."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_generate_creates_a_private_file_in_a_new_directory(tmp_path, open_umask):
    path = tmp_path / "secrets" / "keys.json"
    key_id = generate_key_file(path)
    assert KEY_ID_SHAPE.fullmatch(key_id)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert os.listdir(path.parent) == ["keys.json"]  # no temporary file left behind
    document = json.loads(path.read_text())
    assert document["format"] == "esg-keyring" and document["version"] == 1
    assert document["primary"] == key_id
    [entry] = document["keys"]
    assert entry["id"] == key_id and len(base64.b64decode(entry["key"])) == 32
    assert entry["created_at"].endswith("+00:00")


def test_load_returns_the_primary_key(tmp_path):
    path = tmp_path / "keys.json"
    key_id = generate_key_file(path)
    ring = load_key_ring(path)
    assert ring.primary_id == key_id
    assert ring.key(key_id) == ring.primary_key and len(ring.primary_key) == 32
    assert ring.key_ids == (key_id,)


def test_generate_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "keys.json"
    first = generate_key_file(path)
    with pytest.raises(KeyFileError, match=f"{re.escape(str(path))} already exists"):
        generate_key_file(path)
    assert load_key_ring(path).primary_id == first
    second = generate_key_file(path, overwrite=True)
    assert load_key_ring(path).key_ids == (second,)


def test_rotation_adds_a_primary_key_and_keeps_the_old_ones(tmp_path, open_umask):
    path = tmp_path / "keys.json"
    first = generate_key_file(path)
    old_key = load_key_ring(path).primary_key
    second = add_key(path)
    third = add_key(path)
    ring = load_key_ring(path)
    assert len({first, second, third}) == 3
    assert ring.primary_id == third
    assert ring.key_ids == (first, second, third)
    assert ring.key(first) == old_key
    assert mode(path) == 0o600
    assert os.listdir(tmp_path) == ["keys.json"]


def test_rotation_of_a_missing_file_fails(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        add_key(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "is not an esg-keyring file"),
        ({"format": "other"}, "is not an esg-keyring file"),
        ({**valid_document(), "version": 2}, "has version 2"),
        ({**valid_document(), "keys": []}, "'keys' must be a non-empty list"),
        (
            {**valid_document(), "primary": "k-20261125-99999999"},
            "primary key id k-20261125-99999999 is not among",
        ),
        (valid_document(b"short"), "key k-20261125-00000001 is 5 bytes, not 32"),
        (valid_document(b"x" * 33), "is 33 bytes, not 32"),
    ],
)
def test_malformed_key_files_are_named_with_the_problem(tmp_path, content, problem):
    path = tmp_path / "keys.json"
    write_key_file(path, content)
    with pytest.raises(KeyFileError) as caught:
        load_key_ring(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_key_that_is_not_base64(tmp_path):
    document = valid_document()
    document["keys"][0]["key"] = "not base64!"
    write_key_file(tmp_path / "keys.json", document)
    with pytest.raises(KeyFileError, match="is not valid base64"):
        load_key_ring(tmp_path / "keys.json")


def test_duplicate_key_ids(tmp_path):
    document = valid_document()
    document["keys"].append(dict(document["keys"][0]))
    write_key_file(tmp_path / "keys.json", document)
    with pytest.raises(KeyFileError, match="appears twice"):
        load_key_ring(tmp_path / "keys.json")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(KeyFileError, match=f"key file {re.escape(str(path))} does not exist"):
        load_key_ring(path)


@pytest.mark.parametrize("file_mode", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_key_file_accessible_by_others_is_refused(tmp_path, file_mode):
    path = tmp_path / "keys.json"
    write_key_file(path, valid_document(), file_mode)
    with pytest.raises(KeyFileError) as caught:
        load_key_ring(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert f"mode {file_mode:04o}" in str(caught.value)


def test_owner_only_modes_are_accepted(tmp_path):
    path = tmp_path / "keys.json"
    write_key_file(path, valid_document(), 0o400)
    assert load_key_ring(path).primary_id == "k-20261125-00000001"


def test_unknown_key_id(tmp_path):
    path = tmp_path / "keys.json"
    key_id = generate_key_file(path)
    with pytest.raises(UnknownKeyIdError) as caught:
        load_key_ring(path).key("k-20200101-deadbeef")
    assert isinstance(caught.value, KeyFileError)
    assert str(caught.value) == f"unknown key id k-20200101-deadbeef: the key file {path} holds only {key_id}"


def test_key_material_never_appears_in_repr_or_messages(tmp_path):
    key = os.urandom(32)
    encoded = base64.b64encode(key).decode()
    ring = KeyRing({"k-1": key}, "k-1", source="keys.json")
    assert encoded not in repr(ring) and repr(key) not in repr(ring)
    assert repr(ring) == "KeyRing(source='keys.json', primary_id='k-1', key_ids=['k-1'])"

    # A key of the wrong length, and a syntax error right next to a key: neither message quotes it.
    document = valid_document(key + b"extra")
    path = tmp_path / "keys.json"
    write_key_file(path, document)
    with pytest.raises(KeyFileError) as caught:
        load_key_ring(path)
    assert base64.b64encode(key + b"extra").decode() not in str(caught.value)
    write_key_file(path, json.dumps(valid_document(key)).replace(f'"{encoded}"', f'"{encoded}" x'))
    with pytest.raises(KeyFileError) as caught:
        load_key_ring(path)
    assert encoded not in str(caught.value) and "line 1" in str(caught.value)
