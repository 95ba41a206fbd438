"""The TL-FIF window: chat sidebar, toolbar, OutputPane, PromptBox + SendBtn, status line. Views only: they publish
ui.* intents and render outcomes; no service is called from here."""
from __future__ import annotations

from tkinter import ttk

from app.bus import Bus
from app.models.settings import Settings
from app.models.theme import palette
from app.views import styles
from app.views.bridge_view import BridgeView
from app.views.key_dialog import ApiKeyDialog
from app.views.output_pane import OutputPane
from app.views.prompt_panel import PromptPanel
from app.views.sidebar import Sidebar
from app.views.status_bar import StatusBar
from app.views.toolbar import Toolbar

TITLE = "TL-FIF"
FONT_BIGGER = ("<Control-equal>", "<Control-plus>", "<Control-KP_Add>")
FONT_SMALLER = ("<Control-minus>", "<Control-KP_Subtract>")
FONT_RESET = ("<Control-Key-0>", "<Control-KP_0>")


class MainWindow:
    def __init__(self, root, bus: Bus, settings: Settings, backend_labels: dict[str, str], *,
                 modal_dialogs: bool = True):
        self.root = root
        self._bus = bus
        self._modal = modal_dialogs
        self.key_dialog: ApiKeyDialog | None = None
        root.title(TITLE)
        root.geometry("1200x680")  # the chat sidebar takes ~240 px of it
        root.minsize(880, 440)
        styles.install(root)
        self.sidebar = Sidebar(root, bus, modal_dialogs=modal_dialogs)
        self.sidebar.pack(side="left", fill="y")
        frame = ttk.Frame(root, padding=8)
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(1, weight=1)
        self.toolbar = Toolbar(frame, bus, settings, backend_labels)
        self.toolbar.grid(row=0, column=0, sticky="ew", pady=(0, 6))
        self.output = OutputPane(frame, bus)
        self.output.grid(row=1, column=0, sticky="nsew")
        self.bridge_view = BridgeView(self.output, bus)
        self.prompt = PromptPanel(frame, bus)
        self.prompt.grid(row=2, column=0, sticky="ew", pady=(8, 4))
        ttk.Separator(frame).grid(row=3, column=0, sticky="ew", pady=(2, 2))
        self.status = StatusBar(frame, bus)
        self.status.grid(row=4, column=0, sticky="ew")
        self.prompt.prompt_box.focus_set()
        self.font_size = 0
        top = root.winfo_toplevel()
        for sequences, step in (FONT_BIGGER, 1), (FONT_SMALLER, -1), (FONT_RESET, 0):
            for sequence in sequences:
                top.bind(sequence, lambda _e, step=step: self._on_font_key(step), add="+")
        bus.subscribe_table({"auth.key_needed": self.on_key_needed,
                             "settings.appearance": self.on_appearance})

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

    def on_key_needed(self, backend, backend_label) -> None:
        # Opened after this message is delivered, so a modal wait never nests inside a publish.
        self.root.after_idle(self._open_key_dialog, backend, backend_label)

    def _open_key_dialog(self, backend: str, backend_label: str) -> None:
        self.key_dialog = ApiKeyDialog(self.root, self._bus, backend, backend_label, modal=self._modal)
