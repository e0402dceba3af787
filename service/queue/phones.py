"""Phone numbers in one form, E.164 (`+442079460958`), for de-duplication and search.

Parsed by `phonenumbers` (Google's libphonenumber): international forms in any
spelling (`+44 (0)20 7946-0958`, `0044 20 7946 0958`), and national ones
(`020 7946 0958`) in the launch's default region (`FAIRDROP_PHONE_REGION`).

Rows stored before numbers took this form hold digits as typed (a national number
kept its trunk 0); no migration rewrites them (a migration is plain SQL, which cannot
parse numbers), so de-duplication also matches them by their national significant
number (`same_number`), and search matches every row by the end of its number.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

MIN_NATIONAL_DIGITS = 7
"""A shorter national number matches too much of other numbers' ends to search by."""


def _parse(phone: str, region: str) -> phonenumbers.PhoneNumber | None:
    raw = phone.strip()
    if raw.startswith("00"):  # the international prefix of most of the world
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region.upper() or None)
    except NumberParseException:
        return None
    possible = phonenumbers.is_possible_number_with_reason(number)
    return number if possible == phonenumbers.ValidationResult.IS_POSSIBLE else None


def normalize(phone: str, region: str) -> str | None:
    """`+44 (0)20 7946-0958` → `+442079460958`; national numbers read in `region`
    (ISO 3166 code, e.g. `GB`); None unless it is a number in use somewhere."""
    number = _parse(phone, region)
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def national(phone: str, region: str) -> str | None:
    """The national significant number (`2079460958`): what is left of a number once
    its country code and trunk prefix are gone, however it was written (None if it
    cannot be a number)."""
    number = _parse(phone, region)
    return None if number is None else phonenumbers.national_significant_number(number)


def same_number(column: str, first: int) -> str:
    """SQL true for rows whose `column` holds the number given as `$first` (E.164) and
    `$first+1` (its national significant number): in E.164, or as a national number
    stored before numbers took that form (digits, maybe a trunk 0 before them)."""
    e164, nsn = f"${first}", f"${first + 1}"
    return (
        f"({column} = {e164} OR (left({column}, 1) <> '+'"
        f" AND ltrim({column}, '0') = {nsn}))"
    )
