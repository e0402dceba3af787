"""Reservation codes: 10 Crockford base32 characters and one check character.

The check character is Luhn mod 32 over the same alphabet, so the whole code stays
readable aloud (no `*~$=U` as Crockford's mod-37 symbols would add) and any single
mistyped character or swap of two neighbours is caught.
"""

from __future__ import annotations

import secrets

import segno

from service.errors import InvalidCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's decoding: confusable letters read as the digit they look like.
_VALUE.update({"O": 0, "I": 1, "L": 1})
BODY_LENGTH = 10
CODE_LENGTH = BODY_LENGTH + 1


def check_character(body: str) -> str:
    """Luhn mod 32 check character for `body` (already canonical)."""
    factor = 2
    total = 0
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def new_code() -> str:
    # 10 characters of 5 bits each from one 50-bit draw (one urandom call, not ten).
    bits = int.from_bytes(secrets.token_bytes(7), "big") >> 6
    body = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(BODY_LENGTH))
    return body + check_character(body)


def format_code(code: str) -> str:
    """For people: `ABCDE-FGHIJ-K`."""
    return f"{code[:5]}-{code[5:10]}-{code[10:]}"


def normalize_code(typed: str) -> str:
    """What a person typed or a scanner read → the canonical code, or `InvalidCode`.

    Accepts lower case, spaces and hyphens, and Crockford's confusables (O→0, I/L→1).
    """
    cleaned = "".join(typed.split()).replace("-", "").upper()
    if len(cleaned) != CODE_LENGTH:
        raise InvalidCode(
            f"A reservation code has {CODE_LENGTH} characters; this has {len(cleaned)}.",
            field="code",
        )
    try:
        canonical = "".join(ALPHABET[_VALUE[ch]] for ch in cleaned)
    except KeyError as exc:
        raise InvalidCode(
            f"{exc.args[0]!r} is not used in reservation codes.", field="code"
        ) from exc
    if check_character(canonical[:BODY_LENGTH]) != canonical[BODY_LENGTH]:
        raise InvalidCode("This code does not check out: a character is mistyped.", field="code")
    return canonical


QR_BORDER = 4
"""Modules of quiet zone around a QR symbol, as the standard asks: scanners find a
symbol by its margin."""


def qr_symbol(code: str) -> segno.QRCode:
    """The code as a QR symbol, the one every PNG, SVG, e-mail and page shows.

    Always a standard QR code: for data this short segno would pick a Micro QR, which
    most phone cameras and store scanners do not read. Level M at least (segno raises
    it when that costs no size), so a scuffed screen or print still reads. It encodes
    the code itself, which is exactly what the desk's code field accepts."""
    return segno.make(code, error="m", micro=False)
