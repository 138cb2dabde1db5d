"""The day's files as AWS Encryption SDK messages: any size round-trips however it is written, and every cut,
changed byte, appended byte, wrong identity or foreign key is refused with ``DecryptionError`` saying why."""

import io
import os
import tracemalloc
from dataclasses import dataclass, replace
from datetime import date

import aws_encryption_sdk
import pytest
from aws_encryption_sdk.identifiers import AlgorithmSuite, CommitmentPolicy, ContentType
from aws_encryption_sdk.internal.formatting.deserialize import (
    deserialize_frame,
    deserialize_header,
    deserialize_header_auth,
)

from esg_assets.lib.crypto.keyring import KEY_NAMESPACE, key_file_keyring, raw_aes_master_key
from esg_assets.lib.crypto.keys import KeyRing, add_key, generate_key_file, load_key_ring
from esg_assets.lib.crypto.messages import (
    FRAME_LENGTH,
    DecryptionError,
    FileIdentity,
    decrypt_bytes,
    decrypted_chunks,
    decrypting_reader,
    encrypting_writer,
)

pytestmark = pytest.mark.unit

KEY_ID = "k-20261125-1a2b3c4d"
OTHER_ID = "k-20261125-ffffffff"  # as long as KEY_ID: a header can be relabelled in place
IDENTITY = FileIdentity("FirmESGRatings_20261120.csv", date(2026, 11, 20), "ratings", 1, "run-1")
TAG_SIZE = 16
IV_SIZE = 12
REGULAR_FRAME = 4 + IV_SIZE + FRAME_LENGTH + TAG_SIZE  # sequence number, IV, content, tag


@pytest.fixture
def keyring():
    return key_file_keyring(KeyRing({KEY_ID: os.urandom(32)}, KEY_ID))


def encrypt(plaintext: bytes, keyring, identity: FileIdentity = IDENTITY, write_size: int = 997) -> bytes:
    """Encrypt as the job does: pushed through the writer in pieces that do not line up with frames."""
    sink = io.BytesIO()
    with encrypting_writer(sink, keyring, identity) as writer:
        for start in range(0, len(plaintext), write_size):
            writer.write(plaintext[start : start + write_size])
        assert writer.tell() == len(plaintext)
    return sink.getvalue()


def decryption_error(ciphertext: bytes, keyring, identity: FileIdentity = IDENTITY) -> str:
    with pytest.raises(DecryptionError) as caught:
        decrypt_bytes(ciphertext, keyring, identity)
    return str(caught.value)


@dataclass(frozen=True)
class Layout:
    """Where each part of a message is, as the SDK's own parser finds it."""

    header: object  # aws_encryption_sdk.structures.MessageHeader
    header_end: int  # end of the header body; its authentication tag follows
    body_start: int
    frames: list[tuple[int, int]]  # (start, end) of each frame, the final frame last
    footer_start: int  # the signature's length, then the signature
    size: int


def layout(ciphertext: bytes) -> Layout:
    stream = io.BytesIO(ciphertext)
    header, raw_header = deserialize_header(stream)
    deserialize_header_auth(header.version, stream, header.algorithm)
    body_start = stream.tell()
    frames = []
    while True:
        start = stream.tell()
        _, final = deserialize_frame(stream, header)
        frames.append((start, stream.tell()))
        if final:
            break
    return Layout(header, len(raw_header), body_start, frames, stream.tell(), len(ciphertext))


def flip(ciphertext: bytes, offset: int, bits: int = 0x01) -> bytes:
    altered = bytearray(ciphertext)
    altered[offset] ^= bits
    return bytes(altered)


# Three full frames and a partial one; and exactly three full frames.
PARTIAL_LAST = os.urandom(3 * FRAME_LENGTH + 11)
FULL_LAST = os.urandom(3 * FRAME_LENGTH)


@pytest.mark.parametrize(
    "size",
    [0, 1, FRAME_LENGTH - 1, FRAME_LENGTH, FRAME_LENGTH + 1, 2 * FRAME_LENGTH, 2 * FRAME_LENGTH + 11],
)
def test_every_size_round_trips_written_in_pieces_that_straddle_frames(keyring, size):
    plaintext = os.urandom(size)
    ciphertext = encrypt(plaintext, keyring)
    assert decrypt_bytes(ciphertext, keyring, IDENTITY) == plaintext
    parts = layout(ciphertext)
    # Every whole frame is a regular frame; the final frame holds the rest, empty when nothing is left.
    assert len(parts.frames) == size // FRAME_LENGTH + 1
    assert all(end - start == REGULAR_FRAME for start, end in parts.frames[:-1])
    final_start, final_end = parts.frames[-1]
    assert final_end - final_start == 4 + 4 + IV_SIZE + 4 + size % FRAME_LENGTH + TAG_SIZE


@pytest.mark.parametrize(
    "write_size", [1, FRAME_LENGTH, 3 * FRAME_LENGTH + 11], ids=["bytewise", "frame-sized", "all-at-once"]
)
def test_byte_by_byte_frame_sized_and_single_writes_make_the_same_plaintext(keyring, write_size):
    plaintext = PARTIAL_LAST if write_size > 1 else PARTIAL_LAST[: FRAME_LENGTH + 5]
    ciphertext = encrypt(plaintext, keyring, write_size=write_size)
    assert decrypt_bytes(ciphertext, keyring, IDENTITY) == plaintext


def test_frames_are_64_kib_in_the_committing_signed_suite(keyring):
    header = layout(encrypt(PARTIAL_LAST, keyring)).header
    assert FRAME_LENGTH == 65536
    assert header.frame_length == 65536
    assert header.content_type == ContentType.FRAMED_DATA
    assert header.algorithm == AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
    assert header.algorithm.is_committing() and header.algorithm.signing_algorithm_info is not None


def test_the_encryption_context_is_the_files_identity_and_the_data_key_is_wrapped_under_the_key_id(keyring):
    header = layout(encrypt(b"data", keyring)).header
    context = dict(header.encryption_context)
    assert "aws-crypto-public-key" in context  # the signature's verification key
    del context["aws-crypto-public-key"]
    assert context == {
        "file_name": "FirmESGRatings_20261120.csv",
        "partition_day": "2026-11-20",
        "kind": "ratings",
        "schema_version": "1",
        "run_id": "run-1",
    }
    (data_key,) = header.encrypted_data_keys
    assert data_key.key_provider.provider_id == KEY_NAMESPACE == "esg-ratings"
    assert data_key.key_provider.key_info[: len(KEY_ID)] == KEY_ID.encode()


def test_each_message_has_its_own_data_key_and_message_id(keyring):
    first, second = encrypt(b"same", keyring), encrypt(b"same", keyring)
    one, two = layout(first).header, layout(second).header
    assert one.message_id != two.message_id
    assert one.encrypted_data_keys != two.encrypted_data_keys


def test_short_reads_from_the_source_are_handled(keyring):
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(size, 7) if size >= 0 else 7)

    plaintext = PARTIAL_LAST[: FRAME_LENGTH + 100]
    assert b"".join(decrypted_chunks(Trickle(encrypt(plaintext, keyring)), keyring, IDENTITY)) == plaintext


def test_the_reader_returns_the_plaintext_in_any_read_sizes(keyring):
    ciphertext = encrypt(PARTIAL_LAST, keyring)
    reader = decrypting_reader(io.BytesIO(ciphertext), keyring, IDENTITY)
    assert reader.read(10) + reader.read(FRAME_LENGTH) + reader.read() == PARTIAL_LAST


def test_writer_accepts_bytearray_and_memoryview_counts_bytes_and_refuses_writes_once_finished(keyring):
    sink = io.BytesIO()
    with encrypting_writer(sink, keyring, IDENTITY) as writer:
        assert writer.write(bytearray(b"abc")) == 3
        assert writer.write(memoryview(b"defg")) == 4
        assert writer.tell() == 7
    assert decrypt_bytes(sink.getvalue(), keyring, IDENTITY) == b"abcdefg"
    with pytest.raises(ValueError):
        writer.write(b"late")


@pytest.mark.parametrize("written", [10, 2 * FRAME_LENGTH + 5], ids=["in-first-frame", "after-two-frames"])
def test_a_writer_whose_block_raises_leaves_output_that_does_not_decrypt(keyring, written):
    sink = io.BytesIO()
    plaintext = os.urandom(written)
    with pytest.raises(RuntimeError, match="source failed"):
        with encrypting_writer(sink, keyring, IDENTITY) as writer:
            writer.write(plaintext)
            raise RuntimeError("source failed")
    assert "truncated" in decryption_error(sink.getvalue(), keyring)
    released = []
    with pytest.raises(DecryptionError):
        for chunk in decrypted_chunks(io.BytesIO(sink.getvalue()), keyring, IDENTITY):
            released.append(chunk)
    assert b"".join(released) == plaintext[: len(b"".join(released))]  # at most whole, genuine frames


def test_memory_stays_within_a_few_frames(keyring, tmp_path):
    total = 4 * 1024 * 1024
    block = os.urandom(100_003)
    path = tmp_path / "big.enc"
    tracemalloc.start()
    try:
        with open(path, "wb") as sink, encrypting_writer(sink, keyring, IDENTITY) as writer:
            written = 0
            while written < total:
                written += writer.write(block)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        size = 0
        with open(path, "rb") as source:
            for chunk in decrypted_chunks(source, keyring, IDENTITY):
                size += len(chunk)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == written
    assert encrypt_peak < 1024 * 1024 and decrypt_peak < 1024 * 1024, (encrypt_peak, decrypt_peak)


# Truncation: every class of cut point, in a message of three full frames and a partial one.

TRUNCATIONS = {
    "empty": lambda parts: 0,
    "inside-header-version": lambda parts: 1,
    "inside-header-context": lambda parts: 60,
    "inside-header-data-keys": lambda parts: parts.header_end - 40,
    "before-header-tag": lambda parts: parts.header_end,
    "inside-header-tag": lambda parts: parts.header_end + 7,
    "after-header": lambda parts: parts.body_start,
    "inside-first-frame-iv": lambda parts: parts.body_start + 6,
    "inside-first-frame": lambda parts: parts.body_start + 1000,
    "inside-first-frame-tag": lambda parts: parts.frames[0][1] - 3,
    "at-first-frame-boundary": lambda parts: parts.frames[0][1],
    "at-last-regular-frame-boundary": lambda parts: parts.frames[-2][1],
    "inside-final-frame-header": lambda parts: parts.frames[-1][0] + 5,
    "inside-final-frame-content": lambda parts: parts.frames[-1][0] + 30,
    "inside-final-frame-tag": lambda parts: parts.frames[-1][1] - 1,
    "before-signature": lambda parts: parts.footer_start,
    "inside-signature-length": lambda parts: parts.footer_start + 1,
    "inside-signature": lambda parts: parts.footer_start + 40,
    "last-signature-byte": lambda parts: parts.size - 1,
}


@pytest.fixture(scope="module")
def partial_last_message():
    keyring = key_file_keyring(KeyRing({KEY_ID: os.urandom(32)}, KEY_ID))
    return keyring, encrypt(PARTIAL_LAST, keyring)


@pytest.mark.parametrize("cut_at", TRUNCATIONS.values(), ids=TRUNCATIONS.keys())
def test_a_message_cut_anywhere_is_refused_as_truncated(partial_last_message, cut_at):
    keyring, ciphertext = partial_last_message
    parts = layout(ciphertext)
    assert len(parts.frames) == 4
    cut = cut_at(parts)
    assert "truncated" in decryption_error(ciphertext[:cut], keyring)


def test_a_cut_at_a_frame_boundary_releases_only_the_whole_frames_before_it(partial_last_message):
    keyring, ciphertext = partial_last_message
    boundary = layout(ciphertext).frames[1][1]
    released = []
    with pytest.raises(DecryptionError, match="truncated"):
        for chunk in decrypted_chunks(io.BytesIO(ciphertext[:boundary]), keyring, IDENTITY):
            released.append(chunk)
    assert b"".join(released) == PARTIAL_LAST[: 2 * FRAME_LENGTH]


def test_a_small_message_cut_at_every_offset_is_refused(keyring):
    ciphertext = encrypt(b"Account ID,Account Name\r\nACC-1,Harbor\r\n", keyring)
    for cut in range(len(ciphertext)):
        with pytest.raises(DecryptionError, match="truncated"):
            decrypt_bytes(ciphertext[:cut], keyring, IDENTITY)


# Changed bytes: header, body and footer.

FLIPS = {
    "header-version": lambda parts: 0,
    "header-algorithm": lambda parts: 2,
    "header-message-id": lambda parts: 10,
    "header-context-value": lambda parts: parts.header_end - 200,
    "header-data-key": lambda parts: parts.header_end - 60,
    "header-frame-length": lambda parts: parts.header_end - 33,
    "header-commitment-key": lambda parts: parts.header_end - 5,
    "header-tag": lambda parts: parts.header_end + 3,
    "frame-sequence-number": lambda parts: parts.frames[1][0] + 3,
    "frame-iv": lambda parts: parts.frames[1][0] + 6,
    "frame-content": lambda parts: parts.frames[1][0] + 500,
    "frame-tag": lambda parts: parts.frames[1][1] - 1,
    "final-frame-marker": lambda parts: parts.frames[-1][0],
    "final-frame-length": lambda parts: parts.frames[-1][0] + 4 + 4 + IV_SIZE + 3,
    "final-frame-content": lambda parts: parts.frames[-1][1] - TAG_SIZE - 2,
    "signature-length": lambda parts: parts.footer_start + 1,
    "signature": lambda parts: parts.footer_start + 30,
    "signature-last-byte": lambda parts: parts.size - 1,
}


@pytest.mark.parametrize("offset_of", FLIPS.values(), ids=FLIPS.keys())
def test_a_changed_byte_in_header_body_or_footer_is_refused(partial_last_message, offset_of):
    keyring, ciphertext = partial_last_message
    decryption_error(flip(ciphertext, offset_of(layout(ciphertext))), keyring)


def test_every_single_bit_change_of_a_small_message_is_refused(keyring):
    ciphertext = encrypt(b"Account ID,Account Name\r\nACC-1,Harbor\r\n", keyring)
    for offset in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            decrypt_bytes(flip(ciphertext, offset), keyring, IDENTITY)


def test_a_data_key_provider_id_that_is_not_utf8_is_refused_as_a_decryption_error(keyring):
    ciphertext = encrypt(b"data", keyring)
    offset = ciphertext.index(KEY_NAMESPACE.encode())  # the header's data key: provider id "esg-ratings"
    with pytest.raises(DecryptionError):
        decrypt_bytes(flip(ciphertext, offset, 0x80), keyring, IDENTITY)


def test_swapped_frames_are_refused(partial_last_message):
    keyring, ciphertext = partial_last_message
    parts = layout(ciphertext)
    (a_start, a_end), (b_start, b_end) = parts.frames[0], parts.frames[1]
    first, second = ciphertext[a_start:a_end], ciphertext[b_start:b_end]
    swapped = ciphertext[:a_start] + second + first + ciphertext[b_end:]
    assert "frames out of order" in decryption_error(swapped, keyring)


def test_a_dropped_or_duplicated_frame_is_refused(partial_last_message):
    keyring, ciphertext = partial_last_message
    start, end = layout(ciphertext).frames[1]
    assert "frames out of order" in decryption_error(ciphertext[:start] + ciphertext[end:], keyring)
    duplicated = ciphertext[:end] + ciphertext[start:end] + ciphertext[end:]
    assert "frames out of order" in decryption_error(duplicated, keyring)


def test_frames_of_another_message_under_the_same_key_are_refused(partial_last_message):
    keyring, ciphertext = partial_last_message
    other = encrypt(PARTIAL_LAST, keyring)
    start, end = layout(ciphertext).frames[1]
    spliced = ciphertext[:start] + other[start:end] + ciphertext[end:]  # same layout, another message id
    assert "authentication failed" in decryption_error(spliced, keyring)


# Appended bytes.


@pytest.mark.parametrize("plaintext", [PARTIAL_LAST[:100], FULL_LAST], ids=["partial-last", "full-last"])
@pytest.mark.parametrize("extra", [b"\x00", b"x" * TAG_SIZE, "copy-of-footer", "copy-of-message"])
def test_bytes_appended_after_the_message_are_refused(keyring, plaintext, extra):
    ciphertext = encrypt(plaintext, keyring)
    if extra == "copy-of-footer":
        extra = ciphertext[layout(ciphertext).footer_start :]
    elif extra == "copy-of-message":
        extra = ciphertext
    message = decryption_error(ciphertext + extra, keyring)
    assert message == "unexpected data after the end of the message: bytes were appended"


# Identity: the header's encryption context is compared with the file the reader expects.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file_name", "FirmESGRatings_20261120_errors.csv"),
        ("partition_day", date(2026, 11, 21)),
        ("kind", "errors"),
        ("schema_version", 2),
        ("run_id", "run-2"),
    ],
)
def test_a_file_read_as_another_identity_is_refused_naming_the_field(keyring, field, value):
    ciphertext = encrypt(b"data", keyring)
    message = decryption_error(ciphertext, keyring, replace(IDENTITY, **{field: value}))
    expected = value.isoformat() if isinstance(value, date) else str(value)
    assert f"its {field} is {IDENTITY.context()[field]!r}, not {expected!r}" in message
    assert message.count("its ") == 1  # only the field that differs


def test_a_file_of_another_day_and_kind_is_refused_naming_each_differing_field(keyring):
    ciphertext = encrypt(b"data", keyring)
    expected = replace(IDENTITY, partition_day=date(2026, 11, 21), kind="errors")
    message = decryption_error(ciphertext, keyring, expected)
    assert message == (
        "this is not FirmESGRatings_20261120.csv of 2026-11-21 (errors): "
        "its partition_day is '2026-11-20', not '2026-11-21'; its kind is 'ratings', not 'errors'"
    )


def test_the_decryptor_releases_nothing_and_reads_no_frame_before_the_identity_check_fails(keyring):
    ciphertext = encrypt(PARTIAL_LAST, keyring)
    source = io.BytesIO(ciphertext)
    chunks = decrypted_chunks(source, keyring, replace(IDENTITY, run_id="run-2"))
    with pytest.raises(DecryptionError, match="its run_id is 'run-1', not 'run-2'"):
        next(chunks)
    assert source.tell() == layout(ciphertext).body_start  # the header and its tag only
    assert next(chunks, None) is None  # and nothing after the refusal either


def test_a_reader_opened_as_another_identity_fails_on_its_first_read(keyring):
    source = io.BytesIO(encrypt(b"data", keyring))
    reader = decrypting_reader(source, keyring, replace(IDENTITY, kind="errors"))
    with pytest.raises(DecryptionError, match="its kind is 'ratings', not 'errors'"):
        reader.read(1)


# Keys.


def test_a_file_under_a_key_the_keyring_does_not_hold_is_refused(keyring):
    other = key_file_keyring(KeyRing({OTHER_ID: os.urandom(32)}, OTHER_ID))
    message = decryption_error(encrypt(b"secret", keyring), other)
    assert message.startswith("none of the configured keys can decrypt it") and OTHER_ID in message
    assert message.endswith("it was encrypted for other keys")


def test_a_different_key_under_the_same_key_id_is_refused(keyring):
    impostor = key_file_keyring(KeyRing({KEY_ID: os.urandom(32)}, KEY_ID))
    decryption_error(encrypt(b"secret", keyring), impostor)


def test_a_relabelled_key_id_is_refused_even_when_the_keyring_holds_that_id():
    # Both ids hold the same key: only the header's authentication catches the changed key name.
    key = os.urandom(32)
    both = key_file_keyring(KeyRing({KEY_ID: key, OTHER_ID: key}, KEY_ID))
    ciphertext = encrypt(b"secret", both)
    relabelled = ciphertext.replace(KEY_ID.encode(), OTHER_ID.encode(), 1)
    assert relabelled != ciphertext
    decryption_error(relabelled, both)


def test_a_message_in_a_non_committing_suite_is_refused(keyring):
    # Made by the stock SDK with the right key, the right identity, but no key commitment.
    legacy = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    ring = KeyRing({KEY_ID: os.urandom(32)}, KEY_ID)
    ciphertext, _ = legacy.encrypt(
        source=b"data",
        key_provider=raw_aes_master_key(KEY_ID, ring.key(KEY_ID)),
        encryption_context=IDENTITY.context(),
        algorithm=AlgorithmSuite.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    )
    assert "CommitmentPolicy" in decryption_error(ciphertext, key_file_keyring(ring))


def test_rotation_keeps_old_files_readable_and_new_files_use_the_new_key(tmp_path):
    key_file = tmp_path / "keys.json"
    old_id = generate_key_file(key_file)
    before = load_key_ring(key_file)
    old_file = encrypt(b"before rotation", key_file_keyring(before))
    new_id = add_key(key_file)
    rotated = key_file_keyring(load_key_ring(key_file))
    assert rotated.primary_key_id == new_id != old_id
    new_file = encrypt(b"after rotation", rotated)
    for ciphertext, key_id in [(old_file, old_id), (new_file, new_id)]:
        (data_key,) = layout(ciphertext).header.encrypted_data_keys
        assert data_key.key_provider.provider_id == "esg-ratings"
        key_info = data_key.key_provider.key_info
        # The raw AES key name, then the tag length (bits), the IV length and the IV.
        assert key_info[: len(key_id)] == key_id.encode() and len(key_info) == len(key_id) + 4 + 4 + IV_SIZE
    assert decrypt_bytes(old_file, rotated, IDENTITY) == b"before rotation"
    assert decrypt_bytes(new_file, rotated, IDENTITY) == b"after rotation"
    # The key file as it was before the rotation does not hold the new key.
    assert "none of the configured keys" in decryption_error(new_file, key_file_keyring(before))


def test_plaintext_is_refused(keyring):
    # The SDK's own words: the first byte, "A", is read as an unsupported message format version.
    assert "Unsupported version 65" in decryption_error(b"Account ID,Account Name\r\n", keyring)
