"""Streaming encryption round-trips any size, and every kind of tampering is caught and named."""

import io
import os
import tracemalloc

import pytest

from esg_assets.crypto.keys import KeyRing, add_key, generate_key_file, load_key_ring
from esg_assets.crypto.stream_cipher import (
    DEFAULT_SEGMENT_SIZE,
    MAGIC,
    TAG_SIZE,
    DecryptionError,
    decrypt_stream,
    encrypting_writer,
    read_key_id,
)

SEGMENT = 32  # small segments make multi-segment files tiny, so every offset can be tampered with
CHUNK = SEGMENT + TAG_SIZE
KEY_ID = "k-20261125-1a2b3c4d"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing({KEY_ID: os.urandom(32)}, KEY_ID)


def encrypt(plaintext: bytes, ring: KeyRing, segment_size: int = SEGMENT, write_size: int = 5) -> bytes:
    sink = io.BytesIO()
    with encrypting_writer(sink, ring, segment_size=segment_size) as writer:
        for start in range(0, len(plaintext), write_size):
            writer.write(plaintext[start : start + write_size])
    return sink.getvalue()


def decrypt(ciphertext: bytes, ring: KeyRing) -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(ciphertext), ring))


def header_size(key_id: str = KEY_ID) -> int:
    return 8 + 1 + 4 + 1 + len(key_id) + 32 + 7


def segments(ciphertext: bytes) -> list[bytes]:
    body = ciphertext[header_size() :]
    return [body[start : start + CHUNK] for start in range(0, len(body), CHUNK)]


def reassemble(ciphertext: bytes, parts: list[bytes]) -> bytes:
    return ciphertext[: header_size()] + b"".join(parts)


def decryption_error(ciphertext: bytes, ring: KeyRing) -> str:
    with pytest.raises(DecryptionError) as caught:
        decrypt(ciphertext, ring)
    return str(caught.value)


# A plaintext of 3 full segments and a partial one; and one of exactly 3 full segments.
PARTIAL_LAST = bytes(range(256))[: 3 * SEGMENT + 11]
FULL_LAST = os.urandom(3 * SEGMENT)


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 11])
def test_round_trip_small_sizes(ring, size):
    plaintext = os.urandom(size)
    ciphertext = encrypt(plaintext, ring)
    assert decrypt(ciphertext, ring) == plaintext
    # One tag per segment, and no empty trailing segment when the size is an exact multiple.
    expected_segments = max(1, -(-size // SEGMENT))
    assert len(ciphertext) == header_size() + size + expected_segments * TAG_SIZE


def test_round_trip_multi_megabyte_with_default_segments_and_odd_write_sizes(ring):
    plaintext = os.urandom(3 * 1024 * 1024 + 7)
    ciphertext = encrypt(plaintext, ring, segment_size=DEFAULT_SEGMENT_SIZE, write_size=100_003)
    assert decrypt(ciphertext, ring) == plaintext


def test_round_trip_exact_multiple_of_default_segment_written_at_once(ring):
    plaintext = os.urandom(4 * DEFAULT_SEGMENT_SIZE)
    ciphertext = encrypt(plaintext, ring, segment_size=DEFAULT_SEGMENT_SIZE, write_size=len(plaintext))
    assert decrypt(ciphertext, ring) == plaintext


def test_each_file_has_its_own_salt_and_nonce_prefix(ring):
    assert encrypt(b"same", ring) != encrypt(b"same", ring)


def test_header_starts_with_magic_and_names_the_key(ring):
    ciphertext = encrypt(b"data", ring)
    assert ciphertext.startswith(MAGIC)
    assert read_key_id(io.BytesIO(ciphertext)) == KEY_ID


def test_short_reads_from_the_source_are_handled(ring):
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(size, 7) if size >= 0 else 7)

    plaintext = os.urandom(5 * SEGMENT + 3)
    assert b"".join(decrypt_stream(Trickle(encrypt(plaintext, ring)), ring)) == plaintext


def test_writer_accepts_bytearray_and_memoryview_and_counts_bytes(ring):
    sink = io.BytesIO()
    with encrypting_writer(sink, ring, segment_size=SEGMENT) as writer:
        assert writer.write(bytearray(b"abc")) == 3
        assert writer.write(memoryview(b"defg")) == 4
        assert writer.tell() == 7
    assert decrypt(sink.getvalue(), ring) == b"abcdefg"
    with pytest.raises(ValueError):
        writer.write(b"late")


def test_an_exception_inside_the_writer_writes_no_last_segment(ring):
    sink = io.BytesIO()
    with pytest.raises(RuntimeError), encrypting_writer(sink, ring, segment_size=SEGMENT) as writer:
        writer.write(os.urandom(2 * SEGMENT + 5))
        raise RuntimeError("source failed")
    assert "truncated" in decryption_error(sink.getvalue(), ring)


def test_every_single_byte_change_is_detected(ring):
    ciphertext = encrypt(PARTIAL_LAST, ring)
    for offset in range(len(ciphertext)):
        altered = bytearray(ciphertext)
        altered[offset] ^= 0x01
        with pytest.raises(DecryptionError):
            decrypt(bytes(altered), ring)


def flip(ciphertext: bytes, offset: int) -> bytes:
    altered = bytearray(ciphertext)
    altered[offset] ^= 0x01
    return bytes(altered)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (0, "not an encrypted ESG file"),
        (8, "unsupported encrypted file version"),
        (9, "corrupt header: segment size"),  # the segment size's top byte: far too large
        (12, "authentication failed at segment 0"),  # its low byte: a plausible size, a different subkey
        (14, "unknown key id"),  # inside the key id
        (14 + len(KEY_ID), "authentication failed at segment 0"),  # salt
        (header_size() - 1, "authentication failed at segment 0"),  # nonce prefix
        (header_size(), "authentication failed at segment 0"),  # first ciphertext byte
        (header_size() + CHUNK - 1, "authentication failed at segment 0"),  # its tag
        (header_size() + CHUNK + 3, "authentication failed at segment 1"),
        (header_size() + 3 * CHUNK + 2, "authentication failed at segment 3"),  # the last, partial segment
    ],
)
def test_a_changed_byte_is_named(ring, offset, message):
    assert message in decryption_error(flip(encrypt(PARTIAL_LAST, ring), offset), ring)


def test_altered_segment_message_says_altered_or_wrong_key(ring):
    message = decryption_error(flip(encrypt(PARTIAL_LAST, ring), header_size() + CHUNK), ring)
    assert message == "authentication failed at segment 1: the file was altered or the key is wrong"


@pytest.mark.parametrize("plaintext", [PARTIAL_LAST, FULL_LAST], ids=["partial-last", "full-last"])
def test_truncation_at_every_offset_is_detected(ring, plaintext):
    ciphertext = encrypt(plaintext, ring)
    boundaries = {header_size() + k * CHUNK: k - 1 for k in range(1, len(segments(ciphertext)))}
    for cut in range(len(ciphertext)):
        message = decryption_error(ciphertext[:cut], ring)
        if cut == 0:
            assert message == "file is truncated: it is empty"
        elif cut < header_size():
            assert message == "file is truncated inside its header"
        elif cut == header_size():
            assert message == "file is truncated: it ends right after its header"
        elif cut in boundaries:
            assert (
                message
                == f"file is truncated: it ends after segment {boundaries[cut]}, before its last segment"
            )
        elif (cut - header_size()) % CHUNK < TAG_SIZE:
            assert message.startswith("file is truncated inside segment")
        else:
            # A cut inside a segment cannot be told from a change to it: the message says both.
            assert message.startswith("authentication failed at segment") and "truncated" in message


def test_cut_right_after_the_header(ring):
    ciphertext = encrypt(b"", ring)
    assert "ends right after its header" in decryption_error(ciphertext[: header_size()], ring)


def test_swapped_segments_are_detected(ring):
    ciphertext = encrypt(PARTIAL_LAST, ring)
    parts = segments(ciphertext)
    parts[0], parts[1] = parts[1], parts[0]
    assert decryption_error(reassemble(ciphertext, parts), ring).startswith(
        "authentication failed at segment 0"
    )


def test_duplicated_middle_segment_is_detected(ring):
    ciphertext = encrypt(PARTIAL_LAST, ring)
    parts = segments(ciphertext)
    parts.insert(2, parts[1])
    assert decryption_error(reassemble(ciphertext, parts), ring).startswith(
        "authentication failed at segment 2"
    )


def test_dropped_middle_segment_is_detected(ring):
    ciphertext = encrypt(PARTIAL_LAST, ring)
    parts = segments(ciphertext)
    del parts[1]
    assert decryption_error(reassemble(ciphertext, parts), ring).startswith(
        "authentication failed at segment 1"
    )


def test_duplicated_last_segment_is_appended_data(ring):
    ciphertext = encrypt(FULL_LAST, ring)
    parts = segments(ciphertext)
    parts.append(parts[-1])
    message = decryption_error(reassemble(ciphertext, parts), ring)
    assert message == "unexpected data after the last segment (2): bytes were appended"


@pytest.mark.parametrize("extra", [b"\x00", b"x" * TAG_SIZE, os.urandom(CHUNK + 5)])
def test_appended_bytes_are_detected(ring, extra):
    assert "bytes were appended" in decryption_error(encrypt(FULL_LAST, ring) + extra, ring)
    # After a partial last segment the extra bytes merge with it: still caught, as a failed segment.
    assert "authentication failed at segment 3" in decryption_error(encrypt(PARTIAL_LAST, ring) + extra, ring)


def test_wrong_key_under_the_same_id_fails_at_the_first_segment(ring):
    impostor = KeyRing({KEY_ID: os.urandom(32)}, KEY_ID)
    message = decryption_error(encrypt(PARTIAL_LAST, ring), impostor)
    assert message == "authentication failed at segment 0: the file was altered or the key is wrong"


def test_unknown_key_id(ring):
    other = KeyRing({"k-20261125-ffffffff": os.urandom(32)}, "k-20261125-ffffffff")
    message = decryption_error(encrypt(b"secret", ring), other)
    assert message.startswith(f"unknown key id {KEY_ID}")


def test_relabelled_key_id_fails_even_when_the_ring_holds_that_id(ring):
    # An attacker points the header at another known key: the header is bound into the subkey and AAD.
    other_id = "k-20261125-ffffffff"
    both = KeyRing({KEY_ID: ring.key(KEY_ID), other_id: ring.key(KEY_ID)}, KEY_ID)
    ciphertext = encrypt(b"secret", both).replace(KEY_ID.encode(), other_id.encode(), 1)
    assert decryption_error(ciphertext, both).startswith("authentication failed at segment 0")


def test_plaintext_is_not_an_encrypted_file(ring):
    assert "not an encrypted ESG file" in decryption_error(b"Account ID,Account Name\r\n", ring)


def test_only_authenticated_segments_are_released(ring):
    ciphertext = flip(encrypt(PARTIAL_LAST, ring), header_size() + 2 * CHUNK + 1)
    released = []
    with pytest.raises(DecryptionError, match="segment 2"):
        for segment in decrypt_stream(io.BytesIO(ciphertext), ring):
            released.append(segment)
    assert b"".join(released) == PARTIAL_LAST[: 2 * SEGMENT]


def test_rotation_old_files_still_decrypt_and_new_files_use_the_new_key(tmp_path):
    key_file = tmp_path / "keys.json"
    old_id = generate_key_file(key_file)
    old_file = encrypt(b"before rotation", load_key_ring(key_file))
    new_id = add_key(key_file)
    rotated = load_key_ring(key_file)
    new_file = encrypt(b"after rotation", rotated)
    assert read_key_id(io.BytesIO(old_file)) == old_id
    assert read_key_id(io.BytesIO(new_file)) == new_id
    assert decrypt(old_file, rotated) == b"before rotation"
    assert decrypt(new_file, rotated) == b"after rotation"


def test_memory_stays_within_a_few_segments(ring, tmp_path):
    total = 8 * 1024 * 1024
    block = os.urandom(DEFAULT_SEGMENT_SIZE)
    path = tmp_path / "big.enc"

    tracemalloc.start()
    try:
        with open(path, "wb") as sink, encrypting_writer(sink, ring) as writer:
            for _ in range(total // len(block)):
                writer.write(block)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        size = 0
        with open(path, "rb") as source:
            for segment in decrypt_stream(source, ring):
                size += len(segment)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total
    assert encrypt_peak < 1024 * 1024 and decrypt_peak < 1024 * 1024, (encrypt_peak, decrypt_peak)
