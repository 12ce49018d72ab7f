"""Content-Disposition values: sanitised, RFC 6266 with an RFC 5987 UTF-8 name."""

from urllib.parse import unquote

import pytest

from mediakeep.kit.http import content_disposition, download_name, sanitize_filename


def test_no_filename_gives_the_bare_disposition() -> None:
    assert content_disposition(None, "inline") == "inline"
    assert content_disposition("", "attachment") == "attachment"


def test_ascii_name_is_given_both_plain_and_encoded() -> None:
    assert content_disposition("report 2024.pdf", "attachment") == (
        "attachment; filename=\"report 2024.pdf\"; filename*=UTF-8''report%202024.pdf"
    )


def test_unicode_name_gets_an_ascii_fallback_and_the_exact_utf8_name() -> None:
    value = content_disposition("Café – ☀.jpg", "inline")

    assert value.startswith('inline; filename="Cafe .jpg"; ')
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded, encoding="utf-8") == "Café – ☀.jpg"
    assert value.isascii()


def test_fallback_for_a_name_without_ascii_letters_keeps_the_extension() -> None:
    assert content_disposition("日本.png", "inline").startswith('inline; filename="download.png";')


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\secret.txt", "secret.txt"),
        ('say "hi".txt', "say hi.txt"),
        ("a\r\nSet-Cookie: x=1.txt", "aSet-Cookie: x=1.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("tab\there.txt", "tabhere.txt"),
        ("  spaced   out .txt  ", "spaced out .txt"),
        ("..", ""),
        ("\x00\x01", ""),
    ],
)
def test_filenames_are_sanitised(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_header_never_carries_quotes_newlines_or_separators_from_the_name() -> None:
    value = content_disposition('x"; filename="evil.html\r\n/..\\a%20b.txt', "attachment")

    assert "\r" not in value
    assert "\n" not in value
    assert value.count('"') == 2  # only the quoted-string's own quotes
    plain = value.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in plain
    assert "\\" not in plain
    assert "%" not in plain
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert all(char not in encoded for char in " ;\"'/\\")


def test_a_name_sanitised_to_nothing_gives_the_bare_disposition() -> None:
    assert content_disposition("../..", "attachment") == "attachment"


def test_long_names_are_shortened_keeping_the_extension() -> None:
    clean = sanitize_filename("a" * 500 + ".jpeg")

    assert len(clean) == 200
    assert clean.endswith("a.jpeg")


def test_unknown_disposition_is_refused() -> None:
    with pytest.raises(ValueError, match="disposition"):
        content_disposition("a.txt", "form-data")


@pytest.mark.parametrize(
    ("filename", "mime", "offered"),
    [
        ("page.html", "image/png", "page.html.png"),  # a polyglot never saves as a page
        ("holiday.JPG", "image/jpeg", "holiday.JPG"),
        ("holiday.jpeg", "image/jpeg", "holiday.jpeg"),
        ("photo.jpg-thumbnail", "image/webp", "photo.jpg-thumbnail.webp"),
        ("3f2a9c", "image/png", "3f2a9c.png"),
        ("talk.wav", "audio/wav", "talk.wav"),
        ("notes.bin", "application/x-unknown", "notes.bin"),  # no known extension: unchanged
    ],
)
def test_download_name_carries_the_extension_of_the_real_type(
    filename: str, mime: str, offered: str
) -> None:
    assert download_name(filename, mime) == offered
    assert content_disposition(filename, "attachment", mime).endswith(
        f"filename*=UTF-8''{offered}"
    )
