"""Text that a submission controls (names, messages, printed output), made safe for where it
goes: a terminal, a CSV file, Markdown, Gradescope.

:func:`plain` is applied once, where such text enters the grader's results: it removes the
characters that a terminal, an editor or a browser would act on (control and format
characters: escape sequences, bidirectional overrides, lone surrogates) and bounds the
length. Each output then adds its own escaping: :func:`csv_cell` for spreadsheets,
:func:`md_code` and :func:`md_block` for Markdown.
"""
import re
import unicodedata

MESSAGE_LIMIT = 3000  # characters of a message kept in the reports
NAME_LIMIT = 200  # characters of a name (a student's, a file's) kept in the reports

_LINE_BREAKS = {"\r\n": "\n", "\r": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"}
# OWASP's rule for CSV injection: a cell that starts with one of these is read as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _kept(ch: str, single_line: bool) -> bool:
    if ch == "\n":
        return not single_line
    if ch == "\t":
        return True
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def plain(text, limit: int = MESSAGE_LIMIT, single_line: bool = False) -> str:
    """``text`` without control, format, private or unassigned characters, line breaks made
    ``\\n`` (spaces when ``single_line``), and cut to ``limit`` characters with a note."""
    text = "" if text is None else str(text)
    length, text = len(text), text[:2 * limit + 2]  # no more work than the limit needs
    for old, new in _LINE_BREAKS.items():
        text = text.replace(old, new)
    text = "".join(ch if _kept(ch, single_line) else (" " if ch == "\n" else "") for ch in text)
    if single_line:
        text = text.replace("\t", " ")
    if len(text) > limit or length > 2 * limit + 2:
        text = text[:limit] + f" [... {max(length - limit, 1)} characters cut]"
    return text


def csv_cell(value, limit: int = MESSAGE_LIMIT) -> str:
    """A text cell for a spreadsheet: on one line, and prefixed with a single quote when it
    would start with a formula character (OWASP), even after leading spaces."""
    text = plain(value, limit, single_line=True)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def md_code(text, limit: int = NAME_LIMIT) -> str:
    """Text inside a Markdown line, as a code span on one line: shown as it is, nothing in it
    read as Markdown, a link or HTML (the delimiter is longer than any run of backticks in it)."""
    text = plain(text, limit, single_line=True)
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip(" ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_block(text, limit: int = MESSAGE_LIMIT, indent: str = "") -> str:
    """Text as a fenced Markdown code block, shown as it is (no Markdown or HTML read in it):
    the fence is longer than any run of backticks in the text."""
    text = plain(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    lines = [fence + "text", *text.split("\n"), fence]
    return "\n".join(indent + line if line else line for line in lines)
