"""The answers' pure logic: the stats under each answer (TTFT, tok/s, total, cold start, cost) and the Markdown
subset the OutputPane renders. No widgets, no servers."""
from __future__ import annotations

import json

import pytest

from app.models import markdown
from app.models.answer_stats import (COST_GPU, COST_LOCAL, COST_TOKENS, BackendFigures, Pricing, Timeline,
                                     answer_stats, money, stats_line, tokens_per_second)
from tlfif_common import names, prices

TABLE = prices.load()


# --- stats -----------------------------------------------------------------------------------------------------------
def test_aws_answer_costs_its_gpu_seconds_at_the_hourly_price():
    hourly_eur = TABLE.ec2_hourly_usd("g4dn.xlarge", "eu-central-1") * prices.usd_to_eur({}, TABLE)
    timeline = Timeline(sent=100.0, ended=103.1, first_token=100.6)
    figures = BackendFigures(tokens=101, ttft_ms=420, generation_ms=2_920, model="TinyLlama")
    stats = answer_stats("aws", timeline, figures, Pricing(gpu_hourly_eur=hourly_eur, usd_to_eur=0.86,
                                                           token_table=TABLE))
    # By hand: 2.92 s × 0.658 $/h × 0.86 €/$ / 3600 s/h = €0.000459; 100 tokens after the first in 2.5 s = 40 tok/s.
    assert stats["cost_eur"] == pytest.approx(2.92 * 0.658 * 0.86 / 3600, rel=1e-6)
    assert stats["cost_basis"] == COST_GPU and stats["cost_usd"] is None and stats["gpu_ms"] == 2_920
    assert stats["tokens_per_s"] == 40.0 and stats["ttft_ms"] == 420 and stats["latency_ms"] == 3_100
    assert stats["cold_start_ms"] is None and stats["stopped"] is False
    assert stats_line(stats) == "TTFT 0.42 s · 40 tok/s · 101 tokens · total 3.10 s · GPU €0.00046"
    assert json.loads(json.dumps(stats)) == stats, "a plain JSON-able dict (the history store keeps it)"


def test_openai_answer_costs_its_usage_tokens_from_the_price_table():
    timeline = Timeline(sent=10.0, ended=11.02, first_token=10.31)
    figures = BackendFigures(tokens=42, ttft_ms=310, generation_ms=1_000, model="gpt-4o-mini-2024-07-18",
                             prompt_tokens=1_200, cached_tokens=200)
    stats = answer_stats("openai", timeline, figures, Pricing(usd_to_eur=0.86, token_table=TABLE))
    # gpt-4o-mini: $0.15 per 1M input, $0.075 cached input, $0.60 output (prices.json).
    usd = (1_000 * 0.15 + 200 * 0.075 + 42 * 0.60) / 1e6
    assert stats["cost_usd"] == pytest.approx(usd) and stats["cost_eur"] == pytest.approx(usd * 0.86)
    assert stats["cost_basis"] == COST_TOKENS and stats["prompt_tokens"] == 1_200
    assert stats_line(stats).endswith(f"· ${money(usd)} (€{money(usd * 0.86)})")
    assert stats_line(stats).startswith("TTFT 0.31 s · 59 tok/s · 42 tokens · total 1.02 s")


@pytest.mark.parametrize("model, prompt_tokens, pricing, note", [
    ("no-such-model", 10, Pricing(usd_to_eur=0.86, token_table=TABLE), "no price for model no-such-model"),
    ("gpt-4o-mini", None, Pricing(usd_to_eur=0.86, token_table=TABLE), "no token usage reported"),
    ("gpt-4o-mini", 10, Pricing(), "no price table"),
])
def test_an_unknown_openai_cost_says_so_and_never_raises(model, prompt_tokens, pricing, note):
    stats = answer_stats("openai", Timeline(sent=0.0, ended=1.0), BackendFigures(tokens=3, model=model,
                                                                               prompt_tokens=prompt_tokens), pricing)
    assert stats["cost_usd"] is None and stats["cost_note"].endswith(note)
    assert stats_line(stats).endswith("cost unknown")


def test_aws_without_gpu_time_or_price_is_cost_unknown():
    no_time = answer_stats("aws", Timeline(sent=0.0, ended=1.0), BackendFigures(), Pricing(gpu_hourly_eur=0.56))
    no_price = answer_stats("aws", Timeline(sent=0.0, ended=1.0), BackendFigures(generation_ms=900), Pricing())
    assert stats_line(no_time) == "total 1.00 s · cost unknown" and stats_line(no_price).endswith("cost unknown")


def test_cold_start_wait_runs_from_starting_to_the_first_token():
    timeline = Timeline(sent=0.0, starting=0.2, first_token=92.7, ended=95.0)
    stats = answer_stats("aws", timeline, BackendFigures(tokens=10, ttft_ms=300, generation_ms=2_000),
                         Pricing(gpu_hourly_eur=0.5659))
    assert stats["cold_start_ms"] == 92_500 and stats["latency_ms"] == 95_000
    assert "cold start 92 s" in stats_line(stats)


def test_without_a_backend_ttft_the_apps_own_is_used_minus_the_cold_start():
    timeline = Timeline(sent=0.0, starting=1.0, first_token=4.5, ended=6.0)
    assert answer_stats("aws", timeline, BackendFigures(tokens=2), Pricing())["ttft_ms"] == 3_500


def test_stopped_answers_say_so_first():
    stats = answer_stats("aws", Timeline(sent=0.0, ended=2.0, first_token=0.5),
                         BackendFigures(tokens=7, ttft_ms=400, generation_ms=1_600), Pricing(gpu_hourly_eur=0.5659),
                         stopped=True)
    assert stats["stopped"] and stats_line(stats).startswith("stopped · TTFT 0.40 s")


def test_tokens_per_second_edges():
    assert tokens_per_second(0, 100, 1_000) is None
    assert tokens_per_second(5, None, None) is None
    assert tokens_per_second(1, 200, 200) == 5.0       # one token: over the whole generation
    assert tokens_per_second(11, 0, 1_000) == 10.0      # 10 tokens after the first, in 1 s
    assert tokens_per_second(3, None, 1_500) == 2.0


def test_money_keeps_two_significant_digits_and_at_least_four_decimals():
    assert [money(x) for x in (0.0004, 0.00012, 0.0123, 1.23456, 0.0, 3e-9)] == \
           ["0.0004", "0.00012", "0.0123", "1.2346", "0", "0.0000"]


def test_stats_line_tolerates_odd_stored_dicts():
    assert stats_line(None) == "" and stats_line({}) == ""
    assert stats_line({"ttft_ms": "x", "tokens": True, "latency_ms": 1500}) == "total 1.50 s"


# --- Markdown -----------------------------------------------------------------------------------------------------
def test_fenced_code_block_gets_a_header_and_its_text_verbatim():
    text = "Install it:\n```\npip install **not bold**\n  indented\n```\nDone."
    assert markdown.parse(text) == [
        ("Install it:\n", ()),
        ("code\n", (markdown.CODE_HEAD,)),
        ("pip install **not bold**\n  indented\n", (markdown.CODE_BLOCK,)),
        ("Done.", ()),
    ]


def test_unclosed_fence_runs_to_the_end():
    assert markdown.parse("~~~\nx = 1\ny = 2") == [("code\n", (markdown.CODE_HEAD,)),
                                                    ("x = 1\ny = 2", (markdown.CODE_BLOCK,))]


def test_a_known_language_is_highlighted_by_token_type_and_the_code_stays_verbatim():
    code = "def f(x):\n    return 'hi'  # note\n"
    segments = markdown.parse(f"```python\n{code}```\nafter")
    assert segments[0] == ("python\n", (markdown.CODE_HEAD,))
    runs = [(text, tags) for text, tags in segments if markdown.CODE_BLOCK in tags]
    assert "".join(text for text, _ in runs) == code
    tag_of = {text: tags[1] for text, tags in runs if len(tags) > 1}
    assert tag_of["def"] == tag_of["return"] == "md_tok_keyword" and tag_of["f"] == "md_tok_function"
    assert tag_of["'hi'"] == "md_tok_string" and tag_of["# note"] == "md_tok_comment"
    assert set(tag_of.values()) <= set(markdown.TOKEN_TAG_NAMES)


def test_an_unknown_language_is_one_plain_run():
    assert markdown.parse("```nosuchlang\na b\n```") == [("nosuchlang\n", (markdown.CODE_HEAD,)),
                                                          ("a b", (markdown.CODE_BLOCK,))]


def test_inline_bold_italic_code_strike_and_their_combinations():
    assert markdown.parse("a **b** *c* _d_ ***e*** `f*g*` **h *i* j** __k__ ~~l~~") == [
        ("a ", ()), ("b", ("md_bold",)), (" ", ()), ("c", ("md_italic",)), (" ", ()), ("d", ("md_italic",)),
        (" ", ()), ("e", ("md_bold_italic",)), (" ", ()), ("f*g*", ("md_code",)), (" ", ()), ("h ", ("md_bold",)),
        ("i", ("md_bold_italic",)), (" j", ("md_bold",)), (" ", ()), ("k", ("md_bold",)), (" ", ()),
        ("l", ("md_strike",)),
    ]


@pytest.mark.parametrize("text", ["snake_case_name", "2 * 3 * 4", "a ** b", "price: 5*", "**unclosed", "`open"])
def test_markers_without_a_partner_stay_as_typed(text):
    assert markdown.parse(text) == [(text, ())]


def test_headings_and_nested_lists_take_the_deepest_level():
    text = "# Title\n### Small ##\n- one **bold**\n  * nested\n\n1. first\n2. second\n\n#hashtag"
    assert markdown.parse(text) == [
        ("Title\n", ("md_h1",)),
        ("Small\n", ("md_h3",)),
        ("• one ", ("md_list1",)), ("bold", ("md_list1", "md_bold")), ("\n", ("md_list1",)),
        ("• nested\n", ("md_list2",)),
        ("\n", ()),
        ("1. first\n2. second\n", ("md_list1",)),
        ("\n#hashtag", ()),
    ]


def test_a_link_carries_its_url_and_a_bare_one_stays_text():
    segments = markdown.parse("See [the docs](https://example.com/a?b=1) or https://plain.example")
    links = [(text, tags) for text, tags in segments if markdown.LINK in tags]
    assert links == [("the docs", (markdown.LINK, "href:https://example.com/a?b=1"))]
    assert markdown.href_of(links[0][1]) == "https://example.com/a?b=1" and markdown.href_of(("md_bold",)) is None


def test_an_unsafe_link_is_not_a_link():
    assert not [tags for _, tags in markdown.parse("[x](javascript:alert(1))") if markdown.LINK in tags]


def test_a_table_is_laid_out_in_aligned_columns():
    text = "| name | n |\n|:-----|--:|\n| long name | 1 |\n| x | 22 |\n\nafter"
    segments = markdown.parse(text)
    table = "".join(t for t, tags in segments if markdown.TABLE in tags)
    assert table.splitlines() == ["name      │  n", "──────────┼───", "long name │  1", "x         │ 22"]
    assert [t for t, tags in segments if markdown.TABLE_HEAD in tags] == ["name      │  n\n"]
    assert segments[-1] == ("\nafter", ())


def test_a_quote_and_a_rule():
    assert markdown.parse("> said\n> so\n\n---\nend") == [("said\nso\n", ("md_quote",)),
                                                          ("\n" + markdown.RULE + "\nend", ())]


def test_joined_segments_are_the_text_without_the_markers():
    text = "## Plan\n1. Read `cfg.ini`\n2. Run **make test**\n\n```\nmake test\n```\nThat's *it*.\n"
    shown = markdown.plain_text(markdown.parse(text))
    assert shown == "Plan\n1. Read cfg.ini\n2. Run make test\n\ncode\nmake test\nThat's it.\n"


def test_plain_text_passes_through_unchanged():
    text = "Hello there.\nYou said: what is TL-FIF?\n"
    assert markdown.plain_text(markdown.parse(text)) == text and markdown.parse("") == []


def test_a_local_cloud_answer_costs_nothing_and_says_local_cpu():
    timeline = Timeline(sent=0.0, ended=2.31, first_token=0.2)
    figures = BackendFigures(tokens=64, ttft_ms=200, generation_ms=2300, model="gemma.gguf")
    stats = answer_stats("aws", timeline, figures, Pricing(gpu_hourly_eur=0.56, usd_to_eur=0.86), local=True)
    assert stats["cost_basis"] == COST_LOCAL and stats["cost_eur"] == 0.0
    assert stats_line(stats).endswith("· local CPU · €0.00")
    assert "GPU" not in stats_line(stats) and "unknown" not in stats_line(stats)


def test_the_echo_engine_says_so():
    figures = BackendFigures(tokens=5, ttft_ms=10, generation_ms=100, model=names.ECHO_MODEL)
    stats = answer_stats("aws", Timeline(sent=0.0, ended=0.2), figures, Pricing(), local=True)
    assert stats_line(stats).endswith("· echo engine · €0.00")
