"""The watcher's OpenAI-compatible engine client against a real llama-cpp-python server running a real model.

Gemma 3 270M base is not a chat model: the tests assert on structure (real token counts, text that is not an echo,
trimming, cancel), never on wording. Temperature 0 and at most 32 tokens keep them short.
"""
from __future__ import annotations

import threading
import time

import openai
import pytest
from support.local_model import SMALL_CONTEXT, log_tail

from tlfif_common.jobs import Job
from tlfif_watcher.engines import context
from tlfif_watcher.engines.base import AdapterError
from tlfif_watcher.engines.echo import ECHO_LABEL
from tlfif_watcher.engines.llama_cpp import LlamaCppEngine

pytestmark = pytest.mark.timeout(180)

JOB_ID = "00000000-0000-4000-8000-0000000000a1"


def job(prompt: str, **fields) -> Job:
    fields.setdefault("params", {"temperature": 0, "max_tokens": 16})
    return Job(id=JOB_ID, prompt=prompt, idle=5, reply_s3=f"s3://b/{JOB_ID}.json", timestamp=0, **fields)


@pytest.fixture
def engine(llama_server):
    eng = LlamaCppEngine(llama_server.base_url, api_key=llama_server.api_key, context_window=SMALL_CONTEXT)
    assert eng.ready()
    yield eng
    eng.close()


def test_a_real_model_answers_with_its_own_token_count(engine):
    gen = engine.generate(job("The capital of France is"))
    pieces = list(gen)
    text = "".join(pieces)

    assert text.strip() and ECHO_LABEL not in text and "You said" not in text
    assert gen.model == engine.model and engine.model.endswith(".gguf")
    # Counted by the server's tokenizer: at most max_tokens, and close to the streamed pieces (one per token,
    # except where a multi-byte character spans two).
    assert 1 <= gen.tokens <= 16
    assert abs(gen.tokens - len(pieces)) <= 2
    assert gen.turns_dropped == 0


def test_the_server_refuses_a_wrong_key(llama_server):
    eng = LlamaCppEngine(llama_server.base_url, api_key="not-the-key")
    assert eng.ready() is False


def test_the_key_is_not_on_the_command_line_that_other_users_can_read(llama_server):
    assert llama_server.api_key.startswith("-"), "the fixture's key starts with a dash and the server took it"
    with open(f"/proc/{llama_server.pid}/cmdline", "rb") as f:
        cmdline = f.read().decode()
    assert "--model" in cmdline and llama_server.api_key not in cmdline


def test_llama_cpp_names_its_missing_lora_support(engine):
    with pytest.raises(AdapterError, match="llama.cpp server cannot load LoRA"):
        engine.generate(job("hi", adapter_uri="s3://models/adapters/a.safetensors"))


def test_cancel_closes_the_stream_and_the_server_stops_generating(engine, llama_server):
    gen = engine.generate(job("Count from one to one hundred: one, two, three,",
                              params={"temperature": 0, "max_tokens": 32}))
    seen = []
    for piece in gen:
        seen.append(piece)
        if len(seen) == 2:
            threading.Thread(target=gen.close).start()
    assert gen.cancelled and len(seen) < 32

    # Server side: it logs the client that hung up, and it is free at once for the next request (llama-cpp-python
    # serves one completion at a time: a generation still running would hold this one back).
    deadline = time.monotonic() + 10
    while "Disconnected from client" not in log_tail(llama_server, 20000):
        assert time.monotonic() < deadline, log_tail(llama_server)
        time.sleep(0.1)
    after = engine.generate(job("One plus one is", params={"temperature": 0, "max_tokens": 2}))
    assert "".join(after).strip()


def turn(i: int) -> list[dict]:
    filler = " ".join(f"word{i}x{j}" for j in range(25))
    return [{"role": "user", "content": f"Turn {i}: {filler}"}, {"role": "assistant", "content": f"Reply {i}."}]


def test_a_long_history_is_trimmed_oldest_turn_first_with_the_servers_tokenizer(engine, llama_server):
    history = turn(1) + turn(2) + turn(3) + turn(4)
    params = {"temperature": 0, "max_tokens": 16, "system": "You are terse."}
    full = job("And now?", messages=history, params=params).chat_messages()

    # Untrimmed, the server refuses it: the history really is too long for a 256-token context.
    raw = openai.OpenAI(base_url=llama_server.base_url, api_key=llama_server.api_key, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        raw.chat.completions.create(model=engine.model, messages=full, max_tokens=16)
    raw.close()

    gen = engine.generate(job("And now?", messages=history, params=params))
    text = "".join(gen)

    assert gen.turns_dropped >= 1
    sent = gen._messages
    assert sent[0] == {"role": "system", "content": "You are terse."}  # never dropped
    assert sent[-1] == {"role": "user", "content": "And now?"}
    kept = sent[1:-1]
    assert kept == history[2 * gen.turns_dropped:]  # whole turns, the oldest first
    assert text.strip()


def test_fit_keeps_everything_that_fits_and_counts_once():
    calls = []

    def count(messages):
        calls.append(len(messages))
        return sum(len(m["content"]) for m in messages)

    messages = [{"role": "system", "content": "s" * 40}, {"role": "user", "content": "u" * 40}]
    fitted = context.fit(messages, budget=context.upper_bound(messages) - 1, count=count)
    assert fitted.messages == messages and fitted.dropped == 0 and calls == [2]
    # A conversation whose bytes (plus template markers) fit is not counted at all.
    assert context.fit(messages, budget=context.upper_bound(messages), count=count).tokens is None
    assert calls == [2]


def test_fit_drops_all_history_but_never_the_system_prompt_or_the_prompt():
    messages = [{"role": "system", "content": "x" * 50}, *turn(1), {"role": "user", "content": "y" * 60}]
    fitted = context.fit(messages, budget=10, count=lambda ms: sum(len(m["content"]) for m in ms))
    assert fitted.dropped == 1
    assert fitted.messages == [messages[0], messages[-1]]


def test_budget_leaves_room_for_the_answer():
    assert context.budget(256, {"max_tokens": 32}) == 224
    assert context.budget(256, {}) == 256 - 128  # no max_tokens: half the window, at most DEFAULT_ANSWER_TOKENS
    assert context.budget(4096, None) == 4096 - context.DEFAULT_ANSWER_TOKENS
