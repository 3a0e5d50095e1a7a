"""One PNG text reader, two strictnesses: the import's (imagemeta.png_text) and the editor's (uiformat.png_text)."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image as PILImage

from comfyui_studio.engine import imagemeta, uiformat
from comfyui_studio.engine.imagemeta import _chunk


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


def _with_chunks(*chunks: bytes) -> bytes:
    data = _png()
    head = 8 + 25  # signature and IHDR
    return data[:head] + b"".join(chunks) + data[head:]


def test_a_repeated_keyword_first_wins_when_strict_and_last_wins_when_lenient() -> None:
    png = _with_chunks(_chunk(b"tEXt", b"prompt\0first"), _chunk(b"tEXt", b"prompt\0second"))
    assert imagemeta.png_text(png) == {"prompt": "first"}
    assert imagemeta.png_text(png, strict=False) == uiformat.png_text(png) == {"prompt": "second"}


def test_a_damaged_chunk_refuses_the_file_when_strict_and_is_skipped_when_lenient() -> None:
    bad_zip = _chunk(b"zTXt", b"workflow\0\0" + b"not zlib")
    png = _with_chunks(bad_zip, _chunk(b"tEXt", b"prompt\0{}"))
    with pytest.raises(imagemeta.MetadataError) as refused:
        imagemeta.png_text(png)
    assert refused.value.reason == "bad_compressed_text"
    assert uiformat.png_text(png) == {"prompt": "{}"}
    # a wrong CRC: the strict reader refuses the structure, the lenient one reads on
    crc_broken = bytearray(_with_chunks(_chunk(b"tEXt", b"prompt\0{}")))
    crc_broken[8 + 25 + 8 + len(b"prompt\0{}")] ^= 0xFF
    with pytest.raises(imagemeta.MetadataError) as refused:
        imagemeta.png_text(bytes(crc_broken))
    assert refused.value.reason == "bad_crc"
    assert uiformat.png_text(bytes(crc_broken)) == {"prompt": "{}"}


def test_both_stop_at_their_text_cap() -> None:
    bomb = _chunk(b"zTXt", b"prompt\0\0" + zlib.compress(b"a" * (3 * 1024 * 1024)))
    png = _with_chunks(bomb)
    with pytest.raises(imagemeta.MetadataError) as refused:
        imagemeta.png_text(png, limit=2 * 1024 * 1024)
    assert refused.value.reason == "text_too_large"
    with pytest.raises(uiformat.ConversionError, match="larger than 2 MiB"):
        uiformat.png_text(png, limit=2 * 1024 * 1024)
    assert uiformat.png_text(png, keys=frozenset({"workflow"})) == {}  # not named: never inflated
