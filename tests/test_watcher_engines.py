"""The watcher's engines: echo, and vLLM through the real `openai` SDK against the fake OpenAI-compatible server."""
from __future__ import annotations

import os
import threading

import pytest
from support.fake_openai import FakeOpenAI
from support.watcher_harness import MODELS_BUCKET, make_bucket, wait_for

from tlfif_common.jobs import Job
from tlfif_watcher.engines.adapters import AdapterFetcher, lora_name
from tlfif_watcher.engines.base import AdapterError, EngineError
from tlfif_watcher.engines.echo import ECHO_LABEL, EchoEngine
from tlfif_watcher.engines.vllm import VllmEngine

pytestmark = pytest.mark.timeout(30)


def job(prompt: str = "Why is the sky blue?", **fields) -> Job:
    return Job(id="00000000-0000-4000-8000-000000000001", prompt=prompt, idle=5,
               reply_s3="s3://b/00000000-0000-4000-8000-000000000001.json", timestamp=0, **fields)


def test_echo_streams_a_labelled_reply_word_by_word():
    gen = EchoEngine(delay_ms=0).generate(job("one two"))
    pieces = list(gen)
    assert "".join(pieces) == f"{ECHO_LABEL} You said: one two"
    assert pieces[-2:] == [" one", " two"]
    assert gen.tokens == len(pieces) and gen.model == "echo"


def test_echo_generation_can_be_cancelled_from_another_thread():
    gen = EchoEngine(delay_ms=50).generate(job("a b c d e f g h i j k l m n o p"))
    seen = []
    for piece in gen:
        seen.append(piece)
        if len(seen) == 2:
            threading.Thread(target=gen.close).start()
    assert gen.cancelled
    assert len(seen) < 5


def test_vllm_streams_with_the_jobs_messages_and_params():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with FakeOpenAI(reply="Rayleigh scattering, mostly.", model="TinyLlama") as srv:
        engine = VllmEngine(srv.base_url)
        assert engine.ready() and engine.model == "TinyLlama"  # first served model when none is configured
        gen = engine.generate(job(messages=history, params={"temperature": 0.2, "max_tokens": 64,
                                                           "system": "Be brief."}))
        text = "".join(gen)
        body = srv.chat_requests[-1].body

    assert text == "Rayleigh scattering, mostly."
    assert gen.tokens == 3  # from the usage chunk the engine asked for
    assert body["model"] == "TinyLlama" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *history,
                                {"role": "user", "content": "Why is the sky blue?"}]


def test_vllm_sends_the_api_key_when_configured():
    with FakeOpenAI(api_key="sekret") as srv:
        assert VllmEngine(srv.base_url, model="fake-model", api_key="wrong").ready() is False
        engine = VllmEngine(srv.base_url, model="fake-model", api_key="sekret")
        assert engine.ready()
        assert "".join(engine.generate(job())) == "Hello world"


def test_vllm_not_ready_while_the_server_is_down():
    with FakeOpenAI() as srv:
        url = srv.base_url
    assert VllmEngine(url).ready() is False


@pytest.mark.parametrize("mode", ["drop", "error"])
def test_vllm_failure_mid_stream_is_an_engine_error(mode):
    with FakeOpenAI(reply="one two three four", fail_after=2, fail_mode=mode) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model")
        seen = []
        with pytest.raises(EngineError) as info:
            for piece in engine.generate(job()):
                seen.append(piece)
    assert seen == ["one", " two"]
    assert info.value.code == "engine_error"


def test_vllm_http_error_is_an_engine_error():
    with FakeOpenAI(status=500) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", max_retries=0)
        with pytest.raises(EngineError, match="500"):
            list(engine.generate(job()))


def test_vllm_generation_closed_from_another_thread_hangs_up_on_the_server():
    with FakeOpenAI(reply="a b c d e f", pause_after=2) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model")
        gen = engine.generate(job())
        seen = []
        done = threading.Event()

        def consume():
            seen.extend(gen)
            done.set()

        threading.Thread(target=consume, daemon=True).start()
        wait_for(lambda: srv.streams and srv.streams[-1].chunks_sent == 2, what="two chunks sent")
        gen.close()  # the server is holding the stream: only closing the connection can end it
        assert done.wait(5), "iteration did not end after close()"
        record = srv.wait_closed()
    assert gen.cancelled
    assert seen == ["a", " b"]
    assert record.client_closed and not record.completed


@pytest.fixture
def adapter_bucket(moto_clients):
    s3 = moto_clients("s3")
    make_bucket(s3, MODELS_BUCKET)
    s3.put_object(Bucket=MODELS_BUCKET, Key="adapters/alice/adapter_config.json", Body=b'{"r": 8}')
    s3.put_object(Bucket=MODELS_BUCKET, Key="adapters/alice/adapter_model.safetensors", Body=b"\0weights")
    return s3


def test_lora_is_fetched_and_loaded_once_then_used_as_the_model(adapter_bucket, tmp_path):
    uri = f"s3://{MODELS_BUCKET}/adapters/alice"
    with FakeOpenAI(reply="tuned", strict_model=True) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", adapters=AdapterFetcher(adapter_bucket, str(tmp_path)))
        first = "".join(engine.generate(job(adapter_uri=uri)))
        second = "".join(engine.generate(job(adapter_uri=uri)))
        plain = "".join(engine.generate(job()))
        loads = srv.lora_loads
        models = [r.body["model"] for r in srv.chat_requests]

    assert first == second == plain == "tuned"
    assert len(loads) == 1
    assert loads[0].body["lora_name"] == lora_name(uri)
    path = loads[0].body["lora_path"]
    assert sorted(os.listdir(path)) == sorted([".tlfif-complete", "adapter_config.json",
                                               "adapter_model.safetensors"])
    assert open(os.path.join(path, "adapter_model.safetensors"), "rb").read() == b"\0weights"
    assert models == [lora_name(uri), lora_name(uri), "fake-model"]


def test_lora_already_loaded_by_an_earlier_watcher_run_is_fine(adapter_bucket, tmp_path):
    uri = f"s3://{MODELS_BUCKET}/adapters/alice"
    with FakeOpenAI(strict_model=True) as srv:
        srv.loaded_loras[lora_name(uri)] = "/somewhere"
        engine = VllmEngine(srv.base_url, model="fake-model", adapters=AdapterFetcher(adapter_bucket, str(tmp_path)))
        assert "".join(engine.generate(job(adapter_uri=uri))) == "Hello world"


def test_lora_load_refused_is_an_adapter_error(adapter_bucket, tmp_path):
    with FakeOpenAI(lora_status=404) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", adapters=AdapterFetcher(adapter_bucket, str(tmp_path)))
        with pytest.raises(AdapterError) as info:
            engine.generate(job(adapter_uri=f"s3://{MODELS_BUCKET}/adapters/alice"))
    assert info.value.code == "adapter_error"


def test_lora_missing_in_the_bucket_is_an_adapter_error(adapter_bucket, tmp_path):
    with FakeOpenAI() as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", adapters=AdapterFetcher(adapter_bucket, str(tmp_path)))
        with pytest.raises(AdapterError, match="no adapter files"):
            engine.generate(job(adapter_uri=f"s3://{MODELS_BUCKET}/adapters/nobody"))
        assert srv.lora_loads == []


def test_adapter_outside_the_models_bucket_is_refused(adapter_bucket, tmp_path):
    fetcher = AdapterFetcher(adapter_bucket, str(tmp_path), allowed_bucket="another-bucket")
    with pytest.raises(AdapterError, match="inside the models bucket"):
        fetcher.fetch(f"s3://{MODELS_BUCKET}/adapters/alice")
    assert os.listdir(tmp_path) == []


def test_adapter_outside_the_adapters_folder_is_refused_before_any_download(adapter_bucket, tmp_path):
    adapter_bucket.put_object(Bucket=MODELS_BUCKET, Key="base/model.safetensors", Body=b"\0base")
    fetcher = AdapterFetcher(adapter_bucket, str(tmp_path), allowed_bucket=MODELS_BUCKET)
    for uri in (f"s3://{MODELS_BUCKET}/base", f"s3://{MODELS_BUCKET}/adapters/../base"):
        with pytest.raises(AdapterError, match="adapters/"):
            fetcher.fetch(uri)
    assert os.listdir(tmp_path) == []


def test_adapter_larger_than_the_cap_is_refused_before_any_download(adapter_bucket, tmp_path):
    fetcher = AdapterFetcher(adapter_bucket, str(tmp_path), allowed_bucket=MODELS_BUCKET, max_bytes=10)
    with pytest.raises(AdapterError, match="larger than 10 bytes"):
        fetcher.fetch(f"s3://{MODELS_BUCKET}/adapters/alice")  # 8 + 8 bytes
    assert os.listdir(tmp_path) == []


def test_spellings_of_one_adapter_share_one_cache_entry(adapter_bucket, tmp_path):
    fetcher = AdapterFetcher(adapter_bucket, str(tmp_path), allowed_bucket=MODELS_BUCKET)
    paths = {fetcher.fetch(f"s3://{MODELS_BUCKET}/{spelling}")
             for spelling in ("adapters/alice", "adapters/alice/", "adapters//alice")}
    assert paths == {os.path.join(str(tmp_path), lora_name(f"s3://{MODELS_BUCKET}/adapters/alice"))}
    assert len(os.listdir(tmp_path)) == 1


def test_vllm_trims_the_oldest_turns_with_its_tokenize_endpoint_and_reports_how_many():
    words = " ".join(["word"] * 40)
    history = []
    for i in range(4):
        history += [{"role": "user", "content": f"q{i} {words}"}, {"role": "assistant", "content": f"a{i} {words}"}]
    with FakeOpenAI(reply="ok", model="TinyLlama", max_model_len=300) as srv:
        engine = VllmEngine(srv.base_url)
        assert engine.ready() and engine.context_window == 300  # as /v1/models lists it
        gen = engine.generate(job(messages=history, params={"max_tokens": 64, "system": "Be brief."}))
        assert "".join(gen) == "ok"
        sent = srv.chat_requests[-1].body["messages"]
        counted = [r.body for r in srv.requests if r.path == "/tokenize"]

    # Fake tokenizer: 41 words + 3 per message. Budget 300 - 64 = 236: the newest two turns (4 × 44) plus the
    # system prompt (5) and the prompt (8) and the generation prompt (1) = 190 fit; three turns (278) do not.
    assert gen.turns_dropped == 2
    assert sent == [{"role": "system", "content": "Be brief."}, *history[4:],
                    {"role": "user", "content": "Why is the sky blue?"}]
    assert counted and all(body["model"] == "TinyLlama" and body["add_generation_prompt"] for body in counted)
