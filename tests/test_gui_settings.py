"""The application settings window in the real window under Xvfb: Ctrl+, opens it; a wrong field says what is
wrong as it is typed and Save waits until it is right; Save writes ~/.tl-fif.ini; the AWS fields are read from a
real stack's outputs in moto's CloudFormation (through boto3, as `tl-fif configure --from-stack`); the OpenAI
models are listed by the fake OpenAI server over HTTP; the export dialog opens at home, then in the last folder."""
from __future__ import annotations

import configparser
import gc
from tkinter import filedialog

import pytest

from app.models.settings import Settings
from app.timings import Timings
from support.fake_openai import FakeOpenAI
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)
from test_configure import REGION, VALUES, make_stack

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

FAST = Timings(result_poll_start_s=0.02, result_poll_cap_s=0.1, ping_interval_s=0.5, cost_interval_s=0.3)


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"settings": Settings(), "endpoints": api.endpoints(), "timings": FAST, **kwargs})


def open_settings(d):
    box = d.window.prompt.prompt_box
    box.focus_force()
    d.update()
    box.event_generate("<Control-comma>")
    d.update(0.1)
    dialog = d.window.settings_dialog
    assert dialog is not None and dialog.winfo_exists()
    return dialog


def retype(d, dialog, field: str, text: str) -> None:
    entry = dialog.entries[field]
    entry.delete(0, "end")
    d.type(entry, text)


def test_a_wrong_field_says_so_as_typed_and_save_writes_the_file(gui, home):
    d = gui()
    dialog = open_settings(d)
    retype(d, dialog, "idle", "99")
    assert "from 1 to 30" in dialog.errors["idle"].cget("text")
    assert dialog.save_btn.instate(["disabled"])
    retype(d, dialog, "local_model", "/nowhere/tiny.gguf")
    assert "No such file" in dialog.errors["local_model"].cget("text")
    model = home / "tiny.gguf"
    model.write_bytes(b"GGUF")
    retype(d, dialog, "local_model", str(model))
    retype(d, dialog, "idle", "12")
    retype(d, dialog, "openai_base_url", "http://localhost:11434/v1")
    assert dialog.errors["idle"].cget("text") == "" and dialog.errors["local_model"].cget("text") == ""
    assert dialog.save_btn.instate(["!disabled"])
    dialog.save_btn.invoke()
    d.update(0.1)
    assert dialog.status.cget("text") == "Saved."
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(home / ".tl-fif.ini")
    assert ini["app"]["idle"] == "12" and ini["local"]["model"] == str(model)
    assert ini["openai"]["base_url"] == "http://localhost:11434/v1"
    assert d.window.toolbar.idle_var.get() == "12", "the toolbar follows the saved idle minutes"
    dialog.event_generate("<Escape>")
    d.update()
    assert not dialog.winfo_exists()


def test_the_aws_fields_are_read_from_a_stack_off_the_tk_thread(gui, home, moto_endpoint, moto_clients, monkeypatch):
    gc.collect()  # moto's server runs in this process: no earlier window's Tk variables left for its threads' GC
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    make_stack(moto_clients("cloudformation"), "tl-fif-gui", VALUES)
    d = gui()
    dialog = open_settings(d)
    retype(d, dialog, "stack", "no-such-stack")
    retype(d, dialog, "region", REGION)
    dialog.read_stack_btn.invoke()
    d.until(lambda: "not found" in dialog.stack_status.cget("text"), 20, "the missing stack named")
    retype(d, dialog, "stack", "tl-fif-gui")
    dialog.read_stack_btn.invoke()
    d.until(lambda: dialog.vars["api_url"].get() == VALUES["ApiUrl"], 20, "the stack's outputs")
    assert dialog.vars["client_id"].get() == VALUES["UserPoolClientId"]
    assert dialog.vars["auth_domain"].get() == VALUES["HostedUiDomain"] and dialog.vars["region"].get() == REGION
    dialog.save_btn.invoke()
    d.update(0.1)
    assert "starts again" in dialog.status.cget("text")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(home / ".tl-fif.ini")
    assert ini["aws"]["api_url"] == VALUES["ApiUrl"]


def test_the_openai_models_are_listed_from_the_server_with_the_key_in_memory(gui):
    server = FakeOpenAI(model="llama3.2:1b").start()
    try:
        d = gui(env={"OPENAI_API_KEY": "sk-test"})
        dialog = open_settings(d)
        retype(d, dialog, "openai_base_url", server.base_url)
        dialog.list_models_btn.invoke()
        d.until(lambda: dialog.entries["openai_model"].cget("values"), 20, "the models listed")
        assert "llama3.2:1b" in dialog.entries["openai_model"].cget("values")
        assert "kept in memory only" in dialog.models_status.cget("text")
        assert [r.headers.get("authorization") for r in server.requests if r.path == "/v1/models"] \
            == ["Bearer sk-test"]
    finally:
        server.stop()


def test_without_a_key_listing_the_models_says_so(gui):
    d = gui()
    dialog = open_settings(d)
    dialog.list_models_btn.invoke()
    d.until(lambda: "no API key" in dialog.models_status.cget("text"), 20, "the missing key named")


def test_the_export_dialog_opens_at_home_then_in_the_last_folder(gui, home, monkeypatch):
    asked = []
    exports = home / "exports"
    exports.mkdir()

    def ask(**options):
        asked.append(options["initialdir"])
        return str(exports / "chat.md")

    monkeypatch.setattr(filedialog, "asksaveasfilename", ask)
    d = gui(modal_dialogs=True)
    d.ask("export me")
    d.window.sidebar.export_current()
    d.window.sidebar.export_current()
    assert asked == [str(home), str(exports)]
    d.until(lambda: (exports / "chat.md").exists(), 10, "the export written")


def test_the_theme_font_size_and_bridge_are_offered_and_apply_when_picked(gui, home):
    d = gui()
    dialog = open_settings(d)
    dialog.theme_var.set("dark")
    dialog.theme_box.event_generate("<<ComboboxSelected>>")
    d.until(lambda: d.app.appearance.palette == "dark", what="the dark palette applied")
    size = d.app.store.current.font_size
    dialog.font_buttons[1].invoke()
    d.update()
    assert d.app.store.current.font_size not in (0, size), "Bigger set a size of its own"
    dialog.bridge_var.set("OpenAI")
    dialog.bridge_box.event_generate("<<ComboboxSelected>>")
    d.update(0.1)
    assert d.window.toolbar.bridge_var.get() == "OpenAI", "the toolbar follows the bridge picked here"
    retype(d, dialog, "bridge_url", "127.0.0.1:8080")
    assert "http://" in dialog.errors["bridge_url"].cget("text") and dialog.save_btn.instate(["disabled"])
    retype(d, dialog, "bridge_url", "http://127.0.0.1:8080/v1")
    retype(d, dialog, "bridge_model", "tinyllama")
    dialog.save_btn.invoke()
    d.update(0.1)
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(home / ".tl-fif.ini")
    assert ini["app"]["theme"] == "dark" and ini["app"]["bridge"] == "openai"
    assert ini["app"]["font_size"] == str(d.app.store.current.font_size)
    assert ini["app"]["bridge_url"] == "http://127.0.0.1:8080/v1" and ini["app"]["bridge_model"] == "tinyllama"
