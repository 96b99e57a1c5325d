"""Data-file fingerprints: size and SHA-256, cached by file identity, never stale."""

from __future__ import annotations

import hashlib
import os

import memo.data.fingerprint as fingerprints
from memo.data.fingerprint import fingerprint


def test_size_and_sha256_cached_until_the_file_changes(tmp_path, monkeypatch):
    data = tmp_path / "audio_train.h5"
    data.write_bytes(b"first version")
    first = fingerprint([data], tmp_path / "cache")
    assert first == {
        str(data): {"size": 13, "sha256": hashlib.sha256(b"first version").hexdigest()}
    }
    hashed = []
    monkeypatch.setattr(fingerprints, "_sha256", lambda path: hashed.append(path) or "x")
    assert fingerprint([data], tmp_path / "cache") == first and not hashed  # from the cache

    stat = data.stat()
    data.write_bytes(b"other version")  # same size, mtime put back: the ctime still changes
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.undo()
    assert fingerprint([data], tmp_path / "cache")[str(data)]["sha256"] == (
        hashlib.sha256(b"other version").hexdigest()
    )


def test_an_unwritable_cache_still_fingerprints(tmp_path, caplog):
    data = tmp_path / "y.p"
    data.write_bytes(b"labels")
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    assert fingerprint([data], blocker)[str(data)]["size"] == 6
    assert "could not cache a fingerprint" in caplog.text
