"""Issue 13: hostile model files are refused by type and size before anything is loaded or allocated."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from deepyn_gui.core import input_limits
from deepyn_gui.core.errors import ModelError
from deepyn_gui.core.input_limits import check_checkpoint_file, check_model_file
from tests.corpus.hostile import _zip_bomb


def test_a_zip_bomb_checkpoint_is_refused_from_its_directory_alone(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.pth", unpacked=64 << 20)
    assert bomb.stat().st_size < 1 << 20

    def no_member_may_be_read(*_a: object, **_k: object) -> None:
        raise AssertionError("a member was opened: the check must not decompress anything")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_member_may_be_read)
    with pytest.raises(ModelError, match=r"zip bomb"):
        check_checkpoint_file(bomb)


def test_a_checkpoint_that_would_unpack_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "big.pth"
    with zipfile.ZipFile(ckpt, "w", compression=zipfile.ZIP_STORED) as z:  # stored, as torch.save writes
        z.writestr("archive/data/0", bytes(3 << 20))
    assert check_checkpoint_file(ckpt) == ckpt
    monkeypatch.setattr(input_limits, "MAX_CHECKPOINT_UNPACKED_BYTES", 2 << 20)
    with pytest.raises(ModelError, match=r"would unpack to 3\.0 MB, over the limit"):
        check_checkpoint_file(ckpt)


def test_models_must_be_regular_non_empty_files_within_the_size_limit(tmp_path: Path) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match="not a regular file"):
        check_model_file(fifo)  # refused without opening it (opening a FIFO would block)
    with pytest.raises(ModelError, match="is a folder"):
        check_model_file(tmp_path)
    with pytest.raises(ModelError, match="not found"):
        check_model_file(tmp_path / "absent.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty \(0 bytes\)"):
        check_model_file(empty)
    big = tmp_path / "big.onnx"
    big.write_bytes(bytes(2048))
    with pytest.raises(ModelError, match="over the limit"):
        check_model_file(big, max_bytes=1024)
    assert check_model_file(big) == big
