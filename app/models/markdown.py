"""Markdown as the OutputPane shows it, as a pure function: text → [(segment, tags)]. Tested without widgets.

    parse("Use **pip**:\\n```sh\\npip install x\\n```")
    → [("Use ", ()), ("pip", ("md_bold",)), (":\\n", ()), ("sh\\n", ("md_code_head",)),
       ("pip", ("md_code_block", "md_tok_name")), (" install x", ("md_code_block",))]

markdown-it-py parses (CommonMark plus the GFM table and strikethrough rules); this module only walks its tokens:
- a fenced or indented code block → a header segment `lang\\n` (`code\\n` without one) tagged md_code_head, where the
  view puts the block's Copy button, then the code verbatim, tagged md_code_block, split by Pygments into runs
  that also carry a md_tok_* tag (the theme colours them); an unknown language is not highlighted;
- headings → md_h1, md_h2, md_h3 (4-6 render as md_h3); lists → "• " or the item's number, tagged md_list1…3 by
  depth so wrapped lines hang under the item; a block quote → md_quote; a rule → a short line of dashes;
- a table → its cells' text laid out in aligned columns (GFM alignment), one md_table block in monospace, the
  header row also md_table_head;
- inline: md_code, md_bold / md_italic / md_bold_italic (Tk gives a character one font: the combination is its
  own tag), md_strike, and a link as md_link plus `href:<url>` (the view opens that URL on click).
A soft line break stays a line break (chat answers are written line by line); blank lines between blocks stay.
Joining the segments gives the text as shown (markers removed); the view adds its own tags (e.g. "answer").
"""
from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt

Segment = tuple[str, tuple[str, ...]]

CODE_BLOCK = "md_code_block"
CODE_HEAD = "md_code_head"
CODE = "md_code"
BOLD = "md_bold"
ITALIC = "md_italic"
BOLD_ITALIC = "md_bold_italic"
STRIKE = "md_strike"
LINK = "md_link"
HREF = "href:"  # prefix of the tag that carries a link's URL
QUOTE = "md_quote"
TABLE = "md_table"
TABLE_HEAD = "md_table_head"
HEADINGS = ("md_h1", "md_h2", "md_h3")
LIST_LEVELS = ("md_list1", "md_list2", "md_list3")
BULLET = "• "
RULE = "—" * 12
# Pygments token types → tags, most specific first (a token takes the tag of its nearest listed ancestor).
TOKEN_TAGS = (
    ("Comment", "md_tok_comment"), ("Keyword", "md_tok_keyword"), ("Name.Builtin", "md_tok_builtin"),
    ("Name.Function", "md_tok_function"), ("Name.Class", "md_tok_class"), ("Name.Decorator", "md_tok_builtin"),
    ("Literal.String", "md_tok_string"), ("Literal.Number", "md_tok_number"), ("Operator.Word", "md_tok_keyword"),
    ("Name.Tag", "md_tok_keyword"), ("Name.Attribute", "md_tok_function"),
)
TOKEN_TAG_NAMES = tuple(dict.fromkeys(tag for _, tag in TOKEN_TAGS))


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def parse(text: str) -> list[Segment]:
    """The segments of `text` with their tags, adjacent equal tags merged."""
    if not text:
        return []
    walker = _Walker()
    walker.blocks(_parser().parse(text))
    out = walker.out
    while out and out[-1][0].endswith("\n") and not text.endswith("\n"):  # as typed: no newline added at the end
        last, tags = out.pop()
        if last[:-1]:
            out.append((last[:-1], tags))
    return _merge(out)


def plain_text(segments: list[Segment]) -> str:
    """What the pane shows for these segments."""
    return "".join(text for text, _ in segments)


def href_of(tags) -> str | None:
    """The URL a link's tags carry (None: not a link)."""
    for tag in tags:
        if tag.startswith(HREF):
            return tag[len(HREF):]
    return None


class _Walker:
    def __init__(self) -> None:
        self.out: list[Segment] = []
        self.base: list[str] = []  # block tags in force (heading, list level, quote)
        self.lists: list[list] = []  # per open list: [ordered, next number, delimiter]
        self.last_line = -1  # the source line the previous block ended on: a gap means a blank line

    def emit(self, text: str, tags: tuple[str, ...]) -> None:
        self.out.append((text, tags))

    def tags(self, *extra: str) -> tuple[str, ...]:
        """The block tags in force (of nested lists only the deepest: its margins win) plus `extra`."""
        deepest = [t for t in self.base if t in LIST_LEVELS][-1:]
        return tuple(t for t in self.base if t not in LIST_LEVELS or t in deepest) + extra

    def gap(self, token, *, show: bool = True) -> None:
        if show and token.map and self.last_line >= 0 and token.map[0] > self.last_line and self.out:
            self.emit("\n", tuple(t for t in self.base if t == QUOTE))
        if token.map:
            self.last_line = token.map[1]

    def blocks(self, tokens) -> None:
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            kind = tok.type
            if kind == "heading_open":
                self.gap(tok)
                self.base.append(HEADINGS[min(int(tok.tag[1]), len(HEADINGS)) - 1])
            elif kind == "heading_close":
                self.emit("\n", self.tags())
                self.base.pop()
            elif kind == "paragraph_open":
                self.gap(tok, show=not tok.hidden)
            elif kind == "paragraph_close":
                self.emit("\n", self.tags())
            elif kind == "inline":
                self.inline(tok.children or [])
            elif kind in ("bullet_list_open", "ordered_list_open"):
                if not self.lists:
                    self.gap(tok)
                start = int(tok.attrs.get("start", 1)) if kind == "ordered_list_open" else 0
                self.lists.append([kind == "ordered_list_open", start, tok.markup])
                self.base.append(LIST_LEVELS[min(len(self.lists), len(LIST_LEVELS)) - 1])
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
                self.base.pop()
            elif kind == "list_item_open":
                ordered, number, delimiter = self.lists[-1]
                if self.out and not self.out[-1][0].endswith("\n"):
                    self.emit("\n", self.tags())
                self.gap(tok)  # a loose list keeps its blank lines, before the marker
                marker = f"{tok.info or number}{delimiter} " if ordered else BULLET
                self.lists[-1][1] = number + 1
                self.emit(marker, self.tags())
            elif kind == "blockquote_open":
                self.gap(tok)
                self.base.append(QUOTE)
            elif kind == "blockquote_close":
                self.base.remove(QUOTE)
            elif kind in ("fence", "code_block"):
                self.gap(tok)
                self.code(tok.info.strip().split(" ")[0] if kind == "fence" else "", tok.content)
            elif kind == "hr":
                self.gap(tok)
                self.emit(RULE + "\n", self.tags())
            elif kind == "html_block":
                self.gap(tok)
                self.emit(tok.content, self.tags())
            elif kind == "table_open":
                self.gap(tok)
                end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
                self.table(tokens[i:end])
                i = end
            i += 1

    def code(self, lang: str, content: str) -> None:
        self.emit((lang or "code") + "\n", (CODE_HEAD,))
        for text, tag in highlight(content, lang):
            self.emit(text, (CODE_BLOCK, tag) if tag else (CODE_BLOCK,))

    def inline(self, children) -> None:
        bold = italic = strike = 0
        hrefs: list[str] = []
        for tok in children:
            kind = tok.type
            if kind == "strong_open":
                bold += 1
            elif kind == "strong_close":
                bold -= 1
            elif kind == "em_open":
                italic += 1
            elif kind == "em_close":
                italic -= 1
            elif kind == "s_open":
                strike += 1
            elif kind == "s_close":
                strike -= 1
            elif kind == "link_open":
                hrefs.append(str(tok.attrs.get("href", "")))
            elif kind == "link_close":
                hrefs.pop()
            elif kind in ("softbreak", "hardbreak"):
                self.emit("\n", self.tags())
            else:
                text = tok.content
                extra: tuple[str, ...] = ()
                if kind == "code_inline":
                    extra = (CODE,)
                elif kind == "image":
                    hrefs.append(str(tok.attrs.get("src", "")))
                if bold and italic:
                    extra += (BOLD_ITALIC,)
                elif bold:
                    extra += (BOLD,)
                elif italic:
                    extra += (ITALIC,)
                if strike:
                    extra += (STRIKE,)
                if hrefs:
                    extra += (LINK, HREF + hrefs[-1])
                if kind == "image":
                    hrefs.pop()
                self.emit(text, self.tags(*extra))

    def table(self, tokens) -> None:
        rows: list[list[str]] = []
        aligns: list[str] = []
        head_rows = 0
        in_head = False
        for tok in tokens:
            if tok.type == "thead_open":
                in_head = True
            elif tok.type == "thead_close":
                in_head = False
            elif tok.type == "tr_open":
                rows.append([])
                head_rows += in_head
            elif tok.type in ("th_open", "td_open") and len(rows) == 1:
                style = str(tok.attrs.get("style", ""))
                aligns.append(style.split(":")[-1] if style.startswith("text-align:") else "left")
            elif tok.type == "inline":
                rows[-1].append("".join(c.content for c in tok.children or [] if c.type not in ("softbreak",)))
        columns = max(len(row) for row in rows)
        widths = [max(len(row[c]) if c < len(row) else 0 for row in rows) for c in range(columns)]
        aligns += ["left"] * (columns - len(aligns))
        for r, row in enumerate(rows):
            cells = [_aligned(row[c] if c < len(row) else "", widths[c], aligns[c]) for c in range(columns)]
            tags = self.tags(*((TABLE, TABLE_HEAD) if r < head_rows else (TABLE,)))
            self.emit(" │ ".join(cells).rstrip() + "\n", tags)
            if r == head_rows - 1:
                self.emit("─┼─".join("─" * w for w in widths) + "\n", self.tags(TABLE))
        if tokens and tokens[0].map:
            self.last_line = tokens[0].map[1]


def _aligned(text: str, width: int, align: str) -> str:
    if align == "right":
        return text.rjust(width)
    if align == "center":
        return text.center(width)
    return text.ljust(width)


def highlight(code: str, lang: str) -> list[tuple[str, str | None]]:
    """`code` split into runs with the md_tok_* tag of each (None: plain). An unknown language: one plain run."""
    lexer = _lexer(lang.lower()) if lang else None
    if lexer is None:
        return [(code, None)] if code else []
    runs: list[tuple[str, str | None]] = []
    for token_type, value in lexer.get_tokens(code):
        tag = _token_tag(token_type)
        if runs and runs[-1][1] == tag:
            runs[-1] = (runs[-1][0] + value, tag)
        else:
            runs.append((value, tag))
    if runs and not code.endswith("\n") and runs[-1][0].endswith("\n"):  # Pygments ends its output with a newline
        runs[-1] = (runs[-1][0][:-1], runs[-1][1])
    return [run for run in runs if run[0]]


@lru_cache(maxsize=64)
def _lexer(lang: str):
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=512)
def _token_tag(token_type) -> str | None:
    while token_type is not None:
        name = ".".join(token_type)
        for prefix, tag in TOKEN_TAGS:
            if name == prefix:
                return tag
        token_type = token_type.parent
    return None


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for text, tags in segments:
        if not text:
            continue
        if out and out[-1][1] == tags and CODE_HEAD not in tags:
            out[-1] = (out[-1][0] + text, tags)
        else:
            out.append((text, tags))
    return out
