"""`python -m tlfif_local.llama_server ARGS`: llama-cpp-python's OpenAI-compatible server (same arguments as
`python -m llama_cpp.server`), with the chat templates of the model families we name registered first.

llama-cpp-python's built-in formats only approximate some models: its "zephyr" puts a blank line after each role
marker, which TinyLlama-1.1B-Chat never saw in training. A GGUF without `tokenizer.chat_template` gets its family's
published template from here (`model_file.FAMILY_CHAT_FORMATS` names it).
"""
from __future__ import annotations

# TinyLlama-1.1B-Chat-v1.0's `chat_template` (its tokenizer_config.json), with its Llama-2 tokenizer's BOS/EOS.
TINYLLAMA_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")

# name → (Jinja template, bos_token, eos_token)
TEMPLATES = {
    "tinyllama": (TINYLLAMA_TEMPLATE, "<s>", "</s>"),
}


def formatter(name: str):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template, bos, eos = TEMPLATES[name]
    return Jinja2ChatFormatter(template=template, bos_token=bos, eos_token=eos)


def register_templates() -> None:
    from llama_cpp.llama_chat_format import register_chat_completion_handler

    for name in TEMPLATES:
        register_chat_completion_handler(name)(formatter(name).to_chat_handler())


def main() -> None:
    register_templates()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
