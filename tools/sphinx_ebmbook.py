"""Sphinx extension of the book: renders ebmbook's docstrings in the API reference cleanly.

Loaded through ``sphinx.local_extensions`` in _config.yml. The docstrings are written to be
read with ``help()`` and in the source first, so they use plain shape notation such as
``(n, *event_shape)``; reStructuredText would read that ``*`` as the start of emphasis. This
extension changes only how docstrings are rendered, never what the package does:

* a ``*`` or ``**`` that opens an argument-unpacking pattern inside a shape or a signature
  (after ``(``, ``[`` or ``, ``) is escaped, so ``(n, *event_shape)`` shows as written;
* a ``|`` is escaped, so that a norm such as ``|x|`` is not read as a substitution;
* an inline literal followed directly by a letter (``refine``ᵈ) gets the escaped space
  that reStructuredText needs there;
* the fields of a NamedTuple are documented once, from the ``Attributes:`` section of the
  class docstring, not a second time as the generated "Alias for field number k" members.
"""

from __future__ import annotations

import re

UNPACK_STAR = re.compile(r"(?<=[(\[])(\*{1,2})(?=\w)|(?<=, )(\*{1,2})(?=\w)")
INLINE_LITERAL = re.compile(r"(``[^`\n]+``)")


def _escape_line(line: str) -> str:
    # Split into text (even indices) and inline literals (odd indices), left to right;
    # a star inside ``...`` is already shown as written
    parts = INLINE_LITERAL.split(line)
    for i in range(0, len(parts), 2):
        parts[i] = UNPACK_STAR.sub(lambda m: "\\" + "\\".join(m.group(0)), parts[i])
        parts[i] = parts[i].replace("|", "\\|")  # |x| is a norm, not a substitution
    for i in range(1, len(parts), 2):
        if re.match(r"\w", parts[i + 1]):
            parts[i] += "\\ "
    return "".join(parts)


def escape_docstring(app, what, name, obj, options, lines):
    lines[:] = [_escape_line(line) for line in lines]


def skip_namedtuple_aliases(app, what, name, obj, skip, options):
    doc = getattr(obj, "__doc__", None) or ""
    if isinstance(doc, str) and doc.startswith("Alias for field number"):
        return True
    return None


def setup(app):
    # Before napoleon (priority 500) turns the Google-style sections into fields
    app.connect("autodoc-process-docstring", escape_docstring, priority=400)
    app.connect("autodoc-skip-member", skip_namedtuple_aliases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
