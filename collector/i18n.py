"""Report and ticket-body text in English or Simplified Chinese (``language: zh-CN``).

Through Babel and gettext catalogs: the English text is the message id, the Chinese is
in ``collector/locale/zh_CN/LC_MESSAGES/patrol.po``. The ``.po`` is compiled in memory
by Babel the first time a language is used (``read_po`` + ``write_mo``), so there is no
build step and no binary ``.mo`` to keep in step: ``pip install -e .``, a wheel and CI
all ship the one text file. A message without a translation stays English.

Numbers and dates are formatted per locale by Babel (``1,234.5`` / ``1,234.5``;
``2023年10月27日 09:00``), always in UTC, as every Patrol page states times.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locale"
DOMAIN = "patrol"
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}  # config value -> Babel locale


def locale_of(language: str) -> str:
    try:
        return LANGUAGES[language]
    except KeyError:
        raise ValueError(f"unknown language {language!r}; use one of "
                         f"{', '.join(LANGUAGES)}") from None


@cache
def translations(language: str = "en") -> gettext.NullTranslations:
    """The catalog of ``language`` (English: the identity)."""
    locale = locale_of(language)
    source = LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == "en" or not source.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with source.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def gettext_for(language: str = "en") -> Callable[[str], str]:
    """``_`` for ``language``."""
    return translations(language).gettext


def number(value: float, language: str = "en", digits: int = 1) -> str:
    """A number with the locale's grouping and decimal signs."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=locale_of(language))


def moment(epoch: float, language: str = "en") -> str:
    """A UTC date and time in the locale's medium format, marked UTC."""
    from babel.dates import format_datetime

    return format_datetime(datetime.fromtimestamp(epoch, UTC), "medium", tzinfo=UTC,
                           locale=locale_of(language)) + " UTC"
