"""The TL-FIF window: chat sidebar, toolbar, OutputPane, PromptBox + SendBtn, status line. Views only: they publish
ui.* intents and render outcomes; no service is called from here."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable

from app.bus import Bus
from app.models.settings import Settings
from app.models.folders import LastFolder
from app.models.theme import palette
from app.views import styles
from app.views.app_settings_dialog import AppSettingsDialog
from app.views.bridge_view import BridgeView
from app.views.find_bar import FindBar
from app.views.key_dialog import ApiKeyDialog
from app.views.output_pane import OutputPane
from app.views.prompt_panel import PromptPanel
from app.views.search_dialog import SearchDialog
from app.views.sidebar import Sidebar
from app.views.status_bar import StatusBar
from app.views.toolbar import Toolbar
from app.views.waiting_list import WaitingList

TITLE = "TL-FIF"
FONT_BIGGER = ("<Control-equal>", "<Control-plus>", "<Control-KP_Add>")
FONT_SMALLER = ("<Control-minus>", "<Control-KP_Subtract>")
FONT_RESET = ("<Control-Key-0>", "<Control-KP_0>")


class MainWindow:
    def __init__(self, root, bus: Bus, settings: Settings, backend_labels: dict[str, str], *,
                 modal_dialogs: bool = True, current_settings: Callable[[], Settings] | None = None):
        self.root = root
        self._bus = bus
        self._modal = modal_dialogs
        self._current_settings = current_settings or (lambda: settings)
        self.folders = LastFolder()  # where file dialogs open: home, then the last folder used
        self.key_dialog: ApiKeyDialog | None = None
        self.search_dialog: SearchDialog | None = None
        self.settings_dialog: AppSettingsDialog | None = None
        root.title(TITLE)
        root.geometry("1200x680")  # the chat sidebar takes ~240 px of it
        root.minsize(880, 440)
        styles.install(root)
        self.menu = self._menu(root)
        self.sidebar = Sidebar(root, bus, modal_dialogs=modal_dialogs, folders=self.folders)
        self.sidebar.pack(side="left", fill="y")
        frame = ttk.Frame(root, padding=8)
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(1, weight=1)
        self.toolbar = Toolbar(frame, bus, settings, backend_labels)
        self.toolbar.grid(row=0, column=0, sticky="ew", pady=(0, 6))
        self.output = OutputPane(frame, bus)
        self.output.grid(row=1, column=0, sticky="nsew")
        self.find_bar = FindBar(frame, self.output)
        self.find_bar.grid(row=2, column=0, sticky="ew", pady=(4, 0))
        self.find_bar.grid_remove()  # shown by Ctrl+F
        self.bridge_view = BridgeView(self.output, bus)
        self.waiting = WaitingList(frame, bus)
        self.waiting.grid(row=3, column=0, sticky="ew", pady=(6, 0))
        self.waiting.grid_remove()  # shown while prompts wait for the answer in flight
        self.prompt = PromptPanel(frame, bus)
        self.prompt.grid(row=4, column=0, sticky="ew", pady=(8, 4))
        self.output.edit_listeners.append(self.prompt.begin_edit)
        ttk.Separator(frame).grid(row=5, column=0, sticky="ew", pady=(2, 2))
        self.status = StatusBar(frame, bus)
        self.status.grid(row=6, column=0, sticky="ew")
        self.prompt.prompt_box.focus_set()
        # Also bound on the PromptBox itself, before the Text class bindings (Ctrl+K there deletes to the line end).
        for widget in (root, self.prompt.prompt_box):
            for sequence in ("<Control-f>", "<Control-F>"):  # Ctrl+Shift+F arrives as Control-F: see _on_find
                widget.bind(sequence, self._on_find, add="+")
            for sequence in ("<Control-k>", "<Control-K>"):
                widget.bind(sequence, self._on_ctrl_k, add="+")
        self.font_size = 0
        top = root.winfo_toplevel()
        for sequences, step in (FONT_BIGGER, 1), (FONT_SMALLER, -1), (FONT_RESET, 0):
            for sequence in sequences:
                top.bind(sequence, lambda _e, step=step: self._on_font_key(step), add="+")
        root.bind("<Control-comma>", self._on_ctrl_comma, add="+")
        for sequence in ("<Control-r>", "<Control-R>"):
            root.bind(sequence, self._on_ctrl_r, add="+")
        bus.subscribe_table({"auth.key_needed": self.on_key_needed, "chat.opened": self.on_chat_opened,
                             "search.results": self.on_search_results,
                             "settings.stack_read": self.on_stack_read,
                             "settings.models_listed": self.on_models_listed,
                             "settings.form_invalid": self.on_form_invalid,
                             "settings.form_saved": self.on_form_saved,
                             "settings.appearance": self.on_appearance})

    def _menu(self, root) -> tk.Menu:
        bar = tk.Menu(root)
        app = tk.Menu(bar, tearoff=0)
        app.add_command(label="Settings…", accelerator="Ctrl+,", command=self.open_settings)
        app.add_command(label="Search all chats…", accelerator="Ctrl+K", command=self.open_search)
        app.add_command(label="Find in chat…", accelerator="Ctrl+F", command=lambda: self.find_bar.open())
        app.add_command(label="Regenerate the last answer", accelerator="Ctrl+R", command=self.regenerate)
        bar.add_cascade(label="TL-FIF", menu=app)
        root.configure(menu=bar)
        return bar

    def open_settings(self) -> AppSettingsDialog:
        if self.settings_dialog is not None and self.settings_dialog.winfo_exists():
            self.settings_dialog.lift()
        else:
            self.settings_dialog = AppSettingsDialog(self.root, self._bus, self._current_settings(), self.folders,
                                                     modal=self._modal)
        return self.settings_dialog

    def _open_settings_dialog(self) -> AppSettingsDialog | None:
        dialog = self.settings_dialog
        return dialog if dialog is not None and dialog.winfo_exists() else None

    def on_stack_read(self, values, error) -> None:
        if dialog := self._open_settings_dialog():
            dialog.on_stack_read(values, error)

    def on_models_listed(self, models, error) -> None:
        if dialog := self._open_settings_dialog():
            dialog.on_models_listed(models, error)

    def on_form_invalid(self, errors) -> None:
        if dialog := self._open_settings_dialog():
            dialog.on_form_invalid(errors)

    def on_form_saved(self, message) -> None:
        if dialog := self._open_settings_dialog():
            dialog.on_form_saved(message)

    def regenerate(self) -> None:
        self._bus.send("ui.regenerate")

    def _on_ctrl_r(self, _event) -> str:
        self.regenerate()
        return "break"

    def _on_ctrl_comma(self, _event) -> str:
        self.open_settings()
        return "break"

    def _on_ctrl_k(self, _event) -> str:
        self.open_search()
        return "break"

    def _on_find(self, event) -> str:
        if event.state & 0x1:  # Shift held: search all chats
            self.open_search()
        else:
            self.find_bar.open()
        return "break"

    def open_search(self) -> SearchDialog:
        if self.search_dialog is not None and self.search_dialog.winfo_exists():
            self.search_dialog.lift()
            self.search_dialog.entry.focus_set()
        else:
            self.search_dialog = SearchDialog(self.root, self._bus)
        return self.search_dialog

    def on_search_results(self, query, hits, error) -> None:
        if self.search_dialog is not None and self.search_dialog.winfo_exists():
            self.search_dialog.on_results(query, hits, error)

    def on_chat_opened(self, **_chat) -> None:
        if self.find_bar.winfo_ismapped():
            self.root.after_idle(self.find_bar.refresh)
    def _on_font_key(self, step: int) -> str:
        self._bus.send("ui.font_size", step=step, desktop=styles.desktop_font_size(self.root))
        return "break"

    def on_appearance(self, theme, palette, font_size) -> None:
        self.apply_theme(palette)
        if font_size != self.font_size:
            self.font_size = font_size
            styles.apply_font_size(self.root, font_size)
            self.output.apply_fonts()

    def apply_theme(self, name: str) -> None:
        p = palette(name)
        styles.apply(self.root, p)
        self.output.apply_theme(p)
        self.prompt.apply_theme(p)
        self.toolbar.cost_label.apply_theme(p)
        self.find_bar.apply_theme(p)

    def on_key_needed(self, backend, backend_label) -> None:
        # Opened after this message is delivered, so a modal wait never nests inside a publish.
        self.root.after_idle(self._open_key_dialog, backend, backend_label)

    def _open_key_dialog(self, backend: str, backend_label: str) -> None:
        self.key_dialog = ApiKeyDialog(self.root, self._bus, backend, backend_label, modal=self._modal)
