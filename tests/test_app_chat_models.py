"""Chats without widgets or files: context trimming, the chat settings rules, titles, the sidebar order, records."""
from __future__ import annotations

import pytest

from tlfif_common.jobs import MAX_TOKENS_LIMIT, Job, validate_infer_request

from app.models.chat import (DEFAULT_MAX_TOKENS, NEW_CHAT_TITLE, ROOT, TITLE_FROM_PROMPT_MAX, Chat, ChatParams,
                             ChatSummary, ParamError, check_chat_params, check_title, exchange_from_record,
                             exchange_record, listing, max_tokens_limit, title_from_prompt)
from app.models.context import (MESSAGE_OVERHEAD_TOKENS, context_budget, estimate_tokens, history_turns,
                                trim_history)
from app.models.exchange import DONE, FAILED, PENDING, STOPPED, Exchange
from app.models.settings import DEFAULT_CONTEXT_TOKENS


def ex(n: int, status: str = DONE, text: str | None = None, prompt: str | None = None) -> Exchange:
    return Exchange(request_id=f"r{n}", backend="aws", backend_label="AWS TinyLlama",
                    prompt=prompt if prompt is not None else f"question {n}", started_at=1000.0 + n,
                    text=f"answer {n}" if text is None else text, status=status)


# --- token estimate and budget ----------------------------------------------------------------------------------
def test_estimate_is_chars_over_four_plus_the_template_markers():
    assert estimate_tokens("") == MESSAGE_OVERHEAD_TOKENS
    assert estimate_tokens("abcd") == MESSAGE_OVERHEAD_TOKENS + 1
    assert estimate_tokens("abcde") == MESSAGE_OVERHEAD_TOKENS + 2
    assert estimate_tokens("x" * 400) == MESSAGE_OVERHEAD_TOKENS + 100


def test_default_budget_fits_tinyllama_minus_the_answer():
    assert DEFAULT_CONTEXT_TOKENS == 2048
    assert context_budget(DEFAULT_CONTEXT_TOKENS, DEFAULT_MAX_TOKENS) == 2048 - DEFAULT_MAX_TOKENS
    assert context_budget(100, 500) == 0


# --- trimming ---------------------------------------------------------------------------------------------------
def test_everything_is_kept_when_it_fits_oldest_first_in_user_assistant_pairs():
    turns = [("q1", "a1"), ("q2", "a2")]
    t = trim_history(turns, prompt="q3", budget_tokens=1000)
    assert t.messages == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                          {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    assert (t.kept, t.dropped, t.over_budget) == (2, 0, False)
    assert t.tokens == sum(estimate_tokens(s) for s in ("q1", "a1", "q2", "a2", "q3"))


def test_without_a_token_budget_only_the_byte_bound_trims():
    """The AWS backend's case: the watcher trims by tokens; the app only keeps the history under the API's bytes."""
    turns = [(f"question {i} " + "x" * 2000, "y" * 2000) for i in range(6)]
    assert trim_history(turns, prompt="p", budget_tokens=None).dropped == 0
    t = trim_history(turns, prompt="p", budget_tokens=None, max_bytes=3 * 4011)  # three pairs of 4011 bytes
    assert (t.kept, t.dropped, t.over_budget) == (3, 3, False)
    assert t.messages[0]["content"].startswith("question 3"), "the newest that fit, oldest first"


def test_the_oldest_turns_go_first_and_the_budget_holds():
    turns = [(f"question {i} " + "x" * 200, f"answer {i} " + "y" * 200) for i in range(10)]
    pair = estimate_tokens(turns[0][0]) + estimate_tokens(turns[0][1])
    prompt = "and now?"
    budget = estimate_tokens(prompt) + 3 * pair + pair // 2  # room for three and a half pairs
    t = trim_history(turns, prompt=prompt, budget_tokens=budget)
    assert (t.kept, t.dropped) == (3, 7)
    assert [m["content"] for m in t.messages] == [s for turn in turns[7:] for s in turn]
    assert t.tokens <= budget


def test_the_system_prompt_is_kept_and_counted():
    turns = [("q" * 40, "a" * 40)] * 3
    pair = 2 * estimate_tokens("q" * 40)
    system = "s" * 400
    budget = estimate_tokens("p") + 2 * pair
    assert trim_history(turns, prompt="p", budget_tokens=budget).kept == 2
    with_system = trim_history(turns, prompt="p", system=system, budget_tokens=budget + estimate_tokens(system))
    assert with_system.kept == 2, "the system prompt takes its own share, not a turn's"
    squeezed = trim_history(turns, prompt="p", system=system, budget_tokens=budget)
    assert squeezed.kept < 2
    assert all(m["role"] != "system" for m in squeezed.messages), "the system prompt travels as params.system"


def test_never_an_assistant_turn_without_its_user_turn():
    turns = [("short q", "a long answer " * 50), ("q2", "a2")]
    budget = estimate_tokens("p") + estimate_tokens("q2") + estimate_tokens("a2") + estimate_tokens("short q")
    t = trim_history(turns, prompt="p", budget_tokens=budget)  # room for the user half of the older pair only
    assert [m["role"] for m in t.messages] == ["user", "assistant"]
    assert t.messages[0]["content"] == "q2"
    for i in range(0, len(t.messages), 2):
        assert (t.messages[i]["role"], t.messages[i + 1]["role"]) == ("user", "assistant")


def test_no_gap_a_turn_that_does_not_fit_ends_the_history():
    turns = [("old", "tiny"), ("huge " * 500, "x"), ("new", "recent")]
    t = trim_history(turns, prompt="p", budget_tokens=200)
    assert [m["content"] for m in t.messages] == ["new", "recent"], "the older small turn is not sent past a gap"


def test_prompt_over_budget_sends_no_history_and_says_so():
    t = trim_history([("q", "a")], prompt="z" * 10_000, budget_tokens=100)
    assert t.messages == [] and t.dropped == 1 and t.over_budget


def test_the_routers_limits_bound_the_history_too():
    turns = [(f"q{i}", f"a{i}") for i in range(300)]
    t = trim_history(turns, prompt="p", budget_tokens=10**9)
    assert len(t.messages) == 200 and t.kept == 100  # MAX_MESSAGES
    big = [("q" * 100_000, "a" * 100_000)] * 3
    t = trim_history(big, prompt="p", budget_tokens=10**9)
    assert t.kept == 1  # MAX_MESSAGES_BYTES (256 KiB)
    validate_infer_request({"prompt": "p", "idle": 5, "messages": t.messages}, models_bucket=None)


def test_history_turns_are_the_answered_exchanges():
    exchanges = [ex(1), ex(2, FAILED, text=""), ex(3, STOPPED, text="partial"), ex(4, STOPPED, text=""),
                 ex(5, PENDING, text="")]
    assert history_turns(exchanges) == [("question 1", "answer 1"), ("question 3", "partial")]


def test_what_the_app_sends_is_what_the_router_accepts_and_the_watcher_replays():
    params = ChatParams(system="Be brief.", temperature=0.2, max_tokens=64)
    t = trim_history(history_turns([ex(1), ex(2)]), prompt="third", system=params.system, budget_tokens=1000)
    body = validate_infer_request({"prompt": "third", "idle": 5, "messages": t.messages,
                                   "params": params.request_params()}, models_bucket=None)
    job = Job.create(body, bucket="b", user="u", now_ms=0)
    assert job.chat_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "question 2"}, {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "third"}]
    assert body["params"] == {"system": "Be brief.", "temperature": 0.2, "max_tokens": 64}
    assert "system" not in ChatParams().request_params(), "an empty system prompt is not sent"


# --- chat settings rules ----------------------------------------------------------------------------------------
def test_valid_chat_settings():
    p = check_chat_params("  Be kind.  ", "0,5", " 300 ", context_tokens=2048)
    assert p == ChatParams(system="Be kind.", temperature=0.5, max_tokens=300)
    assert check_chat_params("", "0", "1", context_tokens=2048).temperature == 0.0
    assert check_chat_params("", "2", str(max_tokens_limit(2048)), context_tokens=2048).temperature == 2.0


@pytest.mark.parametrize("temperature", ["", "warm", "-0.1", "2.01", "nan", "inf"])
def test_temperature_is_a_number_from_0_to_2(temperature):
    with pytest.raises(ParamError) as err:
        check_chat_params("", temperature, "100", context_tokens=2048)
    assert err.value.field == "temperature" and "from 0 to 2" in str(err.value)


@pytest.mark.parametrize("max_tokens", ["", "0", "-5", "1.5", "many", "1793", str(MAX_TOKENS_LIMIT + 1)])
def test_max_tokens_is_whole_and_leaves_room_for_the_prompt(max_tokens):
    with pytest.raises(ParamError) as err:
        check_chat_params("", "0.7", max_tokens, context_tokens=2048)
    assert err.value.field == "max_tokens"
    assert "from 1 to 1792" in str(err.value) and "2048 tokens" in str(err.value)


def test_max_tokens_limit_is_the_apis_with_a_big_context():
    assert max_tokens_limit(128_000) == MAX_TOKENS_LIMIT
    assert check_chat_params("", "1", str(MAX_TOKENS_LIMIT), context_tokens=128_000).max_tokens == MAX_TOKENS_LIMIT


def test_system_prompt_at_most_32_kib():
    with pytest.raises(ParamError) as err:
        check_chat_params("é" * 17_000, "0.7", "100", context_tokens=2048)
    assert err.value.field == "system" and "32 KiB" in str(err.value)


# --- titles, order, records -------------------------------------------------------------------------------------
def test_title_from_the_first_line_with_text():
    assert title_from_prompt("\n\n  What   is\tTL-FIF?  \nmore") == "What is TL-FIF?"
    long = title_from_prompt("word " * 40)
    assert len(long) == TITLE_FROM_PROMPT_MAX and long.endswith("…")
    assert title_from_prompt("   ") == NEW_CHAT_TITLE


def test_first_prompt_titles_a_chat_until_renamed():
    chat = Chat.new(now=1.0)
    assert chat.title == NEW_CHAT_TITLE and chat.empty
    chat.add(ex(1, prompt="Explain LoRA please"))
    assert chat.title == "Explain LoRA please" and chat.updated_at == 1001.0
    assert chat.exchanges[0].chat_id == chat.id
    chat.rename("  LoRA   notes ")
    chat.add(ex(2))
    assert chat.title == "LoRA notes" and chat.renamed
    renamed_first = Chat.new()
    renamed_first.rename("Mine")
    renamed_first.add(ex(3))
    assert renamed_first.title == "Mine"


def test_check_title():
    with pytest.raises(ValueError, match="needs a title"):
        check_title("   ")
    with pytest.raises(ValueError, match="at most"):
        check_title("x" * 121)


def test_listing_is_newest_first_and_shows_the_current_chat_even_while_new():
    saved = [ChatSummary("a", "A", 10.0), ChatSummary("b", "B", 30.0), ChatSummary("c", "C", 20.0)]
    draft = Chat.new(now=40.0)
    assert [s.id for s in listing(saved, draft)] == [draft.id, "b", "c", "a"]
    current = Chat(id="a", created_at=1.0, updated_at=50.0, title="A, renamed")
    rows = listing(saved, current)
    assert [s.id for s in rows] == ["a", "b", "c"] and rows[0].title == "A, renamed"


@pytest.mark.parametrize("status, stored", [(DONE, "done"), (FAILED, "failed"), (STOPPED, "cancelled"),
                                            (PENDING, "pending")])
def test_exchange_records_round_trip(status, stored):
    e = ex(7, status)
    e.stats, e.latency_ms, e.finished_at, e.tokens, e.model, e.error = {"ttft_ms": 12}, 345, 1010.5, 9, "m", "err"
    e.chat_id = "chat-1"
    record = exchange_record(e)
    assert record["status"] == stored and record["answer"] == e.text
    assert exchange_from_record(record, "chat-1") == e
    record["stats"]["ttft_ms"] = 99
    assert e.stats == {"ttft_ms": 12}, "a record is a snapshot"
    with pytest.raises(ValueError):
        exchange_from_record({**record, "status": "weird"})


# --- the tree: alternatives and the branch shown -------------------------------------------------------------------
def test_prompts_sent_in_turn_make_one_line_and_an_alternative_forks_it():
    chat = Chat.new(now=1.0)
    for n in (1, 2, 3):
        chat.add(ex(n))
    assert [e.parent_id for e in chat.exchanges] == [ROOT, "r1", "r2"]
    assert [e.request_id for e in chat.branch()] == ["r1", "r2", "r3"] and chat.leaf_id() == "r3"
    alt = Exchange(request_id="r2b", backend="aws", backend_label="", prompt="question 2, edited",
                   started_at=2000.0, parent_id="r1")
    chat.add(alt)
    assert [e.request_id for e in chat.branch()] == ["r1", "r2b"], "the new alternative is shown"
    assert chat.place("r2b") == (2, 2) and chat.place("r2") == (1, 2) and chat.place("r1") == (1, 1)
    chat.add(ex(4))
    assert chat.exchanges[-1].parent_id == "r2b", "the next prompt follows the branch shown"
    chat.show("r3")
    assert [e.request_id for e in chat.branch()] == ["r1", "r2", "r3"]
    chat.show("r2b")
    assert [e.request_id for e in chat.branch()] == ["r1", "r2b", "r4"], "each branch keeps its own later turns"
    assert [e.request_id for e in chat.path_to("r4")] == ["r1", "r2b", "r4"]
    with pytest.raises(LookupError):
        chat.path_to("nope")
    assert len(chat.exchanges) == 5 and chat.title == "question 1"


def test_an_exchange_whose_parent_is_unknown_starts_the_chat_over():
    chat = Chat.new(now=1.0)
    chat.attach(Exchange(request_id="x", backend="aws", backend_label="", prompt="p", started_at=1.0,
                         parent_id="lost"))
    assert chat.exchanges[0].parent_id == ROOT and chat.branch() == chat.exchanges


def test_records_carry_the_parent_and_old_records_have_none():
    e = ex(1)
    e.parent_id = "r0"
    assert exchange_from_record(exchange_record(e)).parent_id == "r0"
    old = {k: v for k, v in exchange_record(e).items() if k != "parent_id"}
    assert exchange_from_record(old).parent_id is None, "a record from before branches is placed by the chat"
