"""What every report reader shares: the parser registry, bounded file reading, number checks.

A *parser* is one file format the scan recognises. It says which files it takes (a file-name test
on the lower-cased name plus, where names are ambiguous, a sniff of the first bytes) and turns one
file into a plain dict, raising :class:`ReportError` and nothing else on a file it cannot use.
Adding a format is one new module that calls :func:`register`; the scan asks :func:`parser_for`.

Files are read through :func:`read_text` only: it refuses what is not a regular file (a FIFO would
block ``open``), stops at the parser's size cap instead of reading a huge file whole, and turns
every ``OSError`` (permission denied, vanished file) into a :class:`ReportError` that names the
file. Numbers pass :func:`checked`: negative, non-finite or absurd resource counts and latencies
make the file unusable (a scan skips it with the reason) instead of entering the table.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError

__all__ = ["RESOURCE_KEYS", "Parser", "REGISTRY", "register", "parser_for", "read_text",
           "read_head", "num", "checked", "show", "parse_xml", "HEAD_BYTES", "MiB"]

RESOURCE_KEYS = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")
HEAD_BYTES = 4096
MiB = 2**20

# Upper bounds of a believable number: the largest FPGAs hold ~1e7 LUTs, so 1e9 of anything is
# corruption; latencies of 1e7 cycles occur (io_stream CNNs), 1e13 do not.
_LIMITS = {"resource": 1e9, "cycles": 1e13, "ns": 1e6}


@dataclass(frozen=True)
class Parser:
    """One file format: which files it takes and how it reads one.

    ``kind`` says what the scan does with the result: ``report`` (a csynth row), ``vsynth``
    (post-synthesis numbers of a project), ``config``, ``parameters``, ``defines``, ``weights``,
    ``project`` (HLS project files naming the top) or ``table`` (recognised, read on request).
    """

    name: str
    kind: str
    suffixes: tuple[str, ...]
    matches: Callable[[Path, bytes], bool]
    parse: Callable[[Path], dict]
    max_bytes: int = 16 * MiB
    sniff: bool = False  # whether matches() looks at the head (else the name decides)


REGISTRY: list[Parser] = []


def register(parser: Parser) -> Parser:
    """Add ``parser`` to the registry (a later parser with the same name replaces the earlier)."""
    REGISTRY[:] = [p for p in REGISTRY if p.name != parser.name]
    REGISTRY.append(parser)
    return parser


def _wanted(name: str) -> list[Parser]:
    low = name.lower()
    return [p for p in REGISTRY if low.endswith(p.suffixes)]


def parser_for(path: Path, head: bytes | None = None) -> Parser | None:
    """The first registered parser that takes ``path`` (reads its head only when one must sniff)."""
    cands = _wanted(path.name)
    if not cands:
        return None
    if head is None and any(p.sniff for p in cands):
        try:
            head = read_head(path)
        except ReportError:
            head = b""
    for p in cands:
        try:
            if p.matches(path, head or b""):
                return p
        except Exception:  # noqa: BLE001 - a broken matcher must not stop a scan
            continue
    return None


def _open_regular(path: Path) -> int:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ReportError(f"{show(path)}: cannot read ({exc.strerror or exc})") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReportError(f"{show(path)}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, limit: int) -> bytes:
    chunks, got = [], 0
    while got <= limit:
        chunk = os.read(fd, min(MiB, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of a regular file (for sniffing)."""
    fd = _open_regular(path)
    try:
        return _read_fd(fd, n - 1)
    except OSError as exc:
        raise ReportError(f"{show(path)}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def read_text(path: Path, limit: int = 16 * MiB) -> str:
    """A file's text (UTF-8, bad bytes replaced), refusing files over ``limit`` bytes unread."""
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise ReportError(f"{show(path)}: file too large ({size} bytes; this reader stops at "
                              f"{limit} bytes)")
        data = _read_fd(fd, limit)
    except OSError as exc:
        raise ReportError(f"{show(path)}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while we read, or st_size lied (procfs and the like)
        raise ReportError(f"{show(path)}: file too large (over {limit} bytes)")
    return data.decode("utf-8", errors="replace")


_NUM = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def num(text: Any) -> float | None:
    """A report number ('1234', '4.049', '50.000 ns', '1,024') as float; None for '-', 'undef', ''.

    Non-finite and negative values are returned as they are: :func:`checked` refuses them.
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if len(s) > 200:  # no report number is that long; do not regex megabytes
        return None
    m = _NUM.search(s.replace(",", ""))
    if not m:
        word = s.lower().lstrip("+-")
        if word in ("nan", "inf", "infinity"):  # refused by checked(), never kept as missing
            return float(s.lower().replace("infinity", "inf"))
        return None
    try:
        return float(m.group(0))
    except (ValueError, OverflowError):
        return math.inf


def checked(path: Path, rec: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """Refuse a record whose numbers cannot be true: ``keys`` maps field -> unit class
    (``resource``, ``cycles``, ``ns``). Missing values pass; the first bad one raises."""
    for k, unit in keys.items():
        v = rec.get(k)
        if v is None:
            continue
        if not math.isfinite(v):
            raise ReportError(f"{show(path)}: {k} = {v} is not a finite number")
        if v < 0:
            raise ReportError(f"{show(path)}: {k} = {v:g} is negative")
        if v > _LIMITS[unit]:
            raise ReportError(f"{show(path)}: {k} = {v:g} is beyond any real design "
                              f"(> {_LIMITS[unit]:g}); corrupt report?")
    return rec


def show(path: Any) -> str:
    """A path as printable text (undecodable bytes of a file name shown as escapes)."""
    s = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def resource_units(prefixes: tuple[str, ...] = ("", "avail_")) -> dict[str, str]:
    """``{"LUT": "resource", "avail_LUT": "resource", ...}`` for :func:`checked`."""
    return {p + k: "resource" for p in prefixes for k in RESOURCE_KEYS}


TIMING_UNITS = {"lat_best": "cycles", "lat_worst": "cycles", "ii_min": "cycles",
                "ii_max": "cycles", "clk_target_ns": "ns", "clk_est_ns": "ns"}


def parse_xml(text: str, path: Path) -> Any:
    """The root element of an XML text, entities refused.

    A document with a ``<!DOCTYPE`` or ``<!ENTITY`` goes through ``defusedxml``, which refuses
    entity declarations (``billion laughs``) and external references (``SYSTEM "file:///..."``)
    instead of expanding or fetching them. A document without either cannot declare an entity,
    so it is parsed by the standard library's C parser (five times faster on large reports).
    """
    import xml.etree.ElementTree as ET

    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    try:
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            return DET.fromstring(text, forbid_dtd=False, forbid_entities=True,
                                  forbid_external=True)
        return ET.fromstring(text)
    except DefusedXmlException as exc:
        raise ReportError(f"{show(path)}: XML declares entities or external references "
                          f"({type(exc).__name__}); refused") from exc
    except (ET.ParseError, ValueError) as exc:
        raise ReportError(f"{show(path)}: not well-formed XML ({exc})") from exc
    except RecursionError as exc:
        raise ReportError(f"{show(path)}: XML nested too deeply") from exc
