"""The Markdown subset the OutputPane renders, as a pure function: text → [(segment, tags)]. Tested without widgets.

    parse("Use **pip**:\\n```sh\\npip install x\\n```")
    → [("Use ", ()), ("pip", ("md_bold",)), (":\\n", ()), ("sh\\n", ("md_code_head",)),
       ("pip install x", ("md_code_block",))]

What it knows (what chat answers use; the rest stays as typed):
- fenced code blocks (``` or ~~~, an optional language): a header segment `lang\\n` (`code\\n` without one) tagged
  md_code_head, where the view puts the block's Copy button, then the code, verbatim, tagged md_code_block (one
  segment per block; an unclosed fence runs to the end, as in CommonMark);
- headings `#`…`######` → md_h1, md_h2, md_h3 (4-6 render as md_h3), the `#`s dropped;
- bullet lists (`-`, `*`, `+`) → a "• " bullet; numbered lists (`1.` / `1)`) keep their number; both tagged md_list1
  … md_list3 by indentation (two spaces per level), so wrapped lines hang under the item;
- a `---` / `***` rule → a short line of dashes;
- inline: `code` → md_code (nothing inside is interpreted), **bold** / __bold__ → md_bold, *italic* / _italic_ →
  md_italic (an underscore only at word edges, so snake_case stays), ***both*** → md_bold_italic (Tk gives a
  character one font: the combination is its own tag). Markers without a partner stay as text.
Joining the segments gives the text as shown (markers removed); the view adds its own tags (e.g. "answer").
"""
from __future__ import annotations

import re

Segment = tuple[str, tuple[str, ...]]

CODE_BLOCK = "md_code_block"
CODE_HEAD = "md_code_head"
CODE = "md_code"
BOLD = "md_bold"
ITALIC = "md_italic"
BOLD_ITALIC = "md_bold_italic"
HEADINGS = ("md_h1", "md_h2", "md_h3")
LIST_LEVELS = ("md_list1", "md_list2", "md_list3")
BULLET = "• "

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(.*)$")
_NUMBERED = re.compile(r"^([ \t]*)(\d{1,9}[.)])[ \t]+(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_body>.+?)(?P=ticks))"
    r"|\*\*\*(?=\S)(?P<bi>.+?)(?<=\S)\*\*\*"
    r"|\*\*(?=\S)(?P<b1>.+?)(?<=\S)\*\*"
    r"|(?<!\w)__(?=\S)(?P<b2>.+?)(?<=\S)__(?!\w)"
    r"|\*(?=[^\s*])(?P<i1>.+?)(?<=[^\s*])\*"
    r"|(?<!\w)_(?=[^\s_])(?P<i2>.+?)(?<=[^\s_])_(?!\w)"
)


def parse(text: str) -> list[Segment]:
    """The segments of `text` with their tags, adjacent equal tags merged (code blocks stay one segment each)."""
    out: list[Segment] = []
    lines = (text or "").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        last = i == len(lines) - 1
        newline = "" if last else "\n"
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < len(lines) and not _closes(lines[i], marker):
                body.append(lines[i])
                i += 1
            more_after = i < len(lines) - 1  # text follows the closing fence (an unclosed one runs to the end)
            out.append(((fence.group(2) or "code") + "\n", (CODE_HEAD,)))
            out.append(("\n".join(body) + ("\n" if more_after else ""), (CODE_BLOCK,)))
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level = min(len(heading.group(1)), len(HEADINGS)) - 1
            tags = (HEADINGS[level],)
            out.extend(_inline(heading.group(2), tags))
            out.append((newline, tags))
        elif _RULE.match(line):
            out.append(("—" * 12 + newline, ()))
        else:
            item = _BULLET.match(line)
            numbered = None if item else _NUMBERED.match(line)
            if item or numbered:
                indent = (item or numbered).group(1).expandtabs(4)
                tags = (LIST_LEVELS[min(len(indent) // 2, len(LIST_LEVELS) - 1)],)
                marker = BULLET if item else numbered.group(2) + " "
                out.append((marker, tags))
                out.extend(_inline(item.group(2) if item else numbered.group(3), tags))
                out.append((newline, tags))
            else:
                out.extend(_inline(line, ()))
                out.append((newline, ()))
        i += 1
    return _merge(out)


def plain_text(segments: list[Segment]) -> str:
    """What the pane shows for these segments."""
    return "".join(text for text, _ in segments)


def _closes(line: str, marker: str) -> bool:
    """A closing fence: up to 3 spaces, then at least as many of the opening fence's character, nothing else."""
    stripped = line.strip()
    return (len(line) - len(line.lstrip(" ")) <= 3 and len(stripped) >= len(marker)
            and set(stripped) == {marker[0]})


def _inline(text: str, base: tuple[str, ...], *, bold: bool = False, italic: bool = False) -> list[Segment]:
    """Inline markup of one line; `base` are the line's own tags (list level, heading)."""
    out: list[Segment] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.start() > pos:
            out.append((text[pos:match.start()], _style(base, bold, italic)))
        if match.group("code") is not None:
            out.append((match.group("code_body"), base + (CODE,)))
        elif match.group("bi") is not None:
            out.extend(_inline(match.group("bi"), base, bold=True, italic=True))
        elif match.group("b1") is not None or match.group("b2") is not None:
            out.extend(_inline(match.group("b1") or match.group("b2"), base, bold=True, italic=italic))
        else:
            out.extend(_inline(match.group("i1") or match.group("i2"), base, bold=bold, italic=True))
        pos = match.end()
    if pos < len(text):
        out.append((text[pos:], _style(base, bold, italic)))
    return out


def _style(base: tuple[str, ...], bold: bool, italic: bool) -> tuple[str, ...]:
    if bold and italic:
        return base + (BOLD_ITALIC,)
    if bold:
        return base + (BOLD,)
    if italic:
        return base + (ITALIC,)
    return base


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for text, tags in segments:
        if not text and CODE_BLOCK not in tags:
            continue
        if out and out[-1][1] == tags and CODE_BLOCK not in tags and CODE_HEAD not in tags:
            out[-1] = (out[-1][0] + text, tags)
        else:
            out.append((text, tags))
    return out
