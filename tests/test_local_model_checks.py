"""`tl-fif cloud up --model`: a model that cannot be served is refused with a clear error before anything starts,
and the chat template is the GGUF's own or the model family's."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from tlfif_local import llama_server
from tlfif_local.model_file import ModelError, check_model, read_metadata

pytestmark = pytest.mark.timeout(60)


def write_gguf(path, meta: dict) -> str:
    """A GGUF header (version 3, no tensors) holding string/uint32 keys and one string array, as llama.cpp writes."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b""
    items = list(meta.items()) + [("tokenizer.ggml.tokens", ["<s>", "</s>", "hi"])]
    for key, value in items:
        body += s(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + s(value)
        elif isinstance(value, int):
            body += struct.pack("<II", 4, value)
        else:
            body += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(s(v) for v in value)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(items)) + body)
    return str(path)


def run_up(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "TLFIF_LOCAL_MODEL"}
    return subprocess.run([sys.executable, "-m", "tlfif_local", "up", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env={**full_env, **(env or {})})


def test_tinyllama_without_a_template_gets_its_own_published_template(tmp_path):
    path = write_gguf(tmp_path / "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
                      {"general.architecture": "llama", "general.name": "tinyllama_tinyllama-1.1b-chat-v1.0",
                       "llama.block_count": 22, "llama.embedding_length": 2048, "llama.attention.head_count": 32,
                       "llama.attention.head_count_kv": 4})
    info = check_model(path, context=2048)
    assert info.chat_format == "tinyllama" and not info.has_template

    from llama_cpp import llama_chat_format

    llama_server.register_templates()  # what the engine server process does before serving
    assert llama_chat_format.get_chat_completion_handler(info.chat_format)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Why?"}]
    prompt = llama_server.formatter(info.chat_format)(messages=messages).prompt
    # As TinyLlama-1.1B-Chat-v1.0 was tuned (HF's apply_chat_template output): each turn ends in </s>, and the
    # prompt ends with the assistant marker.
    assert prompt == ("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n"
                      "<|user|>\nWhy?</s>\n<|assistant|>\n")
    # llama-cpp-python's built-in "zephyr" is not that (a blank line after each role marker).
    assert llama_chat_format.format_zephyr(messages).prompt != prompt


def test_a_gguf_with_its_own_template_keeps_it(tmp_path):
    template = "{% for m in messages %}{{m.content}}{% endfor %}"
    path = write_gguf(tmp_path / "m.gguf", {"general.architecture": "llama", "general.name": "TinyLlama Chat",
                                            "tokenizer.chat_template": template})
    assert check_model(path, context=512).chat_format is None  # llama-cpp-python then uses the GGUF's template


def test_the_test_model_is_read_from_its_header(gemma_gguf):
    meta = read_metadata(gemma_gguf)
    assert meta["general.architecture"] == "gemma3"
    info = check_model(gemma_gguf, context=2048)
    assert info.chat_format == "gemma" and info.size > 200 * 2**20


def test_a_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ModelError, match="model file not found: .*nope.gguf"):
        check_model(str(tmp_path / "nope.gguf"), context=2048)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    with pytest.raises(ModelError, match="not a GGUF model file"):
        check_model(str(fake), context=2048)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(b"GGUF" + struct.pack("<I", 3))
    with pytest.raises(ModelError, match="not a readable GGUF"):
        check_model(str(truncated), context=2048)


def test_a_model_bigger_than_free_memory_is_refused(gemma_gguf):
    with pytest.raises(ModelError, match=r"needs about .* GiB .* only .* GiB of memory is free"):
        check_model(gemma_gguf, context=2048, available=200 * 2**20)


def test_cloud_up_refuses_a_bad_model_before_starting_anything(tmp_path):
    started = time.monotonic()
    missing = run_up("--model", str(tmp_path / "missing.gguf"))
    assert missing.returncode == 2 and "model file not found" in missing.stderr
    assert missing.stdout == ""  # no info line: nothing came up
    (tmp_path / "notes.gguf").write_text("hello")
    not_gguf = run_up("--model", str(tmp_path / "notes.gguf"))
    assert not_gguf.returncode == 2 and "not a GGUF model file" in not_gguf.stderr
    assert time.monotonic() - started < 25


def test_cloud_up_refuses_an_engine_port_in_use(gemma_gguf):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        answer = run_up("--model", gemma_gguf, "--engine-port", str(port))
    assert answer.returncode == 2 and f"engine port {port} on 127.0.0.1 is in use" in answer.stderr
    assert "redis" not in answer.stderr.lower()  # refused before redis (or anything) started


def test_the_model_comes_from_the_settings_file_or_the_environment_when_not_given(tmp_path):
    from app.models.settings import Settings
    from app.services import config_file

    ini = tmp_path / "tl-fif.ini"
    config_file.save(Settings(local_model=str(tmp_path / "from-ini.gguf")), ini)
    assert config_file.load(ini).settings.local_model == str(tmp_path / "from-ini.gguf")

    env = {"TLFIF_CONFIG": str(ini)}
    from_ini = run_up(env=env)
    assert from_ini.returncode == 2 and "from-ini.gguf" in from_ini.stderr
    from_env = run_up(env={**env, "TLFIF_LOCAL_MODEL": str(tmp_path / "from-env.gguf")})
    assert from_env.returncode == 2 and "from-env.gguf" in from_env.stderr
    given = run_up("--model", str(tmp_path / "given.gguf"), env={**env, "TLFIF_LOCAL_MODEL": "x.gguf"})
    assert given.returncode == 2 and "given.gguf" in given.stderr


def test_an_engine_url_and_a_model_together_are_refused_and_an_engine_url_beats_a_configured_model(tmp_path):
    both = run_up("--model", str(tmp_path / "m.gguf"), "--engine", "http://127.0.0.1:9/v1")
    assert both.returncode == 2 and "not both" in both.stderr
    from app.models.settings import Settings
    from app.services import config_file

    ini = tmp_path / "tl-fif.ini"
    config_file.save(Settings(local_model=str(tmp_path / "configured.gguf")), ini)
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-m", "tlfif_local", "up", "--engine", "http://127.0.0.1:9/v1",
                             "--boot-seconds", "60"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TLFIF_CONFIG": str(ini), "TLFIF_LOCAL_STATE": str(state)})
    try:
        first = proc.stdout.readline()
        assert first.startswith("{") and "api_url" in first  # up, with the URL engine: the model was not looked at
    finally:
        proc.terminate()
        proc.wait(30)
    assert "configured.gguf" not in proc.stderr.read()
