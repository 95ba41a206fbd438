"""The application settings window (Settings… in the TL-FIF menu, Ctrl+,): AWS (read a stack's outputs, or the
endpoint fields by hand), OpenAI (model picked from the models the key can list, base URL for any OpenAI-compatible
server), the local model file, the default idle minutes, the cold-start bridge, the theme and font size. Every field
says what is wrong with it as it is typed (app.models.app_settings_form); Save publishes the texts and the settings
controller applies the same rules. Reading the stack and listing the models run on worker threads (ui.read_stack,
ui.list_models); the main window hands their outcomes to this window. The theme, the font size and the bridge apply
when picked (ui.theme_selected, ui.font_size, ui.bridge_selected), as the keys and the toolbar do; Save keeps the
text fields. `modal=False` (tests) skips the grab and the wait."""
from __future__ import annotations

import tkinter as tk
from tkinter import filedialog, ttk

from app.bus import Bus
from app.models import app_settings_form as form
from app.models.folders import LastFolder
from app.models.settings import Settings
from app.models.theme import DARK, LIGHT, SYSTEM
from app.views import styles
from app.views.toolbar import BRIDGE_LABELS

LABELS = {"stack": "Stack name", "region": "Region", "api_url": "API URL", "client_id": "App client id",
          "auth_domain": "Sign-in domain", "openai_model": "Model", "openai_base_url": "Base URL",
          "local_model": "Model file (.gguf)", "idle": "Idle minutes", "bridge_url": "Local server URL",
          "bridge_model": "Local server model"}
SECTIONS = (("AWS (TinyLlama on your stack; all endpoint fields empty: the local cloud)",
             ("stack", "region", "api_url", "client_id", "auth_domain")),
            ("OpenAI or a compatible server (e.g. Ollama: http://localhost:11434/v1)",
             ("openai_base_url", "openai_model")),
            ("Local model", ("local_model",)),
            ("General", ("idle",)),
            ("While the GPU starts (local model: an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1)",
             ("bridge_url", "bridge_model")))
THEME_LABELS = {SYSTEM: "system (the desktop's)", LIGHT: "light", DARK: "dark"}
FONT_STEPS = (("Smaller (Ctrl+-)", -1), ("Bigger (Ctrl+=)", 1), ("The desktop's (Ctrl+0)", 0))
KEY_NOTE = "The API key is asked for when first needed and kept in memory only, never saved."


class AppSettingsDialog(tk.Toplevel):
    def __init__(self, parent, bus: Bus, settings: Settings, folders: LastFolder, *, modal: bool = True):
        super().__init__(parent)
        self._bus = bus
        self._folders = folders
        self._palette = styles.current(parent)
        self.title("TL-FIF settings")
        self.transient(parent)
        self.vars: dict[str, tk.StringVar] = {}
        self.entries: dict[str, ttk.Entry] = {}
        self.errors: dict[str, ttk.Label] = {}
        frame = ttk.Frame(self, padding=12)
        frame.pack(fill="both", expand=True)
        values = form.values_of(settings)
        for title, fields in SECTIONS:
            box = ttk.LabelFrame(frame, text=title, padding=8)
            box.pack(fill="x", pady=(0, 8))
            box.columnconfigure(1, weight=1)
            for row, name in enumerate(fields):
                self._field(box, row, name, values[name])
            if "stack" in fields:
                self.read_stack_btn = ttk.Button(box, text="Read stack outputs", command=self.read_stack)
                self.read_stack_btn.grid(row=0, column=2, rowspan=2, padx=(8, 0))
                self.stack_status = ttk.Label(box, text="", foreground=self._palette.muted, wraplength=520)
                self.stack_status.grid(row=2 * len(fields), column=0, columnspan=3, sticky="w")
            if "openai_model" in fields:
                self.list_models_btn = ttk.Button(box, text="List models", command=self.list_models)
                self.list_models_btn.grid(row=2, column=2, padx=(8, 0))
                self.models_status = ttk.Label(box, text=KEY_NOTE, foreground=self._palette.muted, wraplength=520)
                self.models_status.grid(row=2 * len(fields), column=0, columnspan=3, sticky="w")
            if "local_model" in fields:
                ttk.Button(box, text="Browse…", command=self.browse_model).grid(row=0, column=2, padx=(8, 0))
            if "bridge_url" in fields:
                ttk.Label(box, text="Answer with:").grid(row=2 * len(fields), column=0, sticky="w", padx=(0, 8))
                self.bridge_var = tk.StringVar(master=self, value=BRIDGE_LABELS[settings.bridge])
                self.bridge_box = ttk.Combobox(box, textvariable=self.bridge_var, state="readonly", width=16,
                                               values=list(BRIDGE_LABELS.values()))
                self.bridge_box.grid(row=2 * len(fields), column=1, sticky="w")
                self.bridge_box.bind("<<ComboboxSelected>>", self._on_bridge)
        self._looks(frame, settings)
        buttons = ttk.Frame(frame)
        buttons.pack(fill="x")
        self.status = ttk.Label(buttons, text="", foreground=self._palette.muted)
        self.status.pack(side="left")
        ttk.Button(buttons, text="Close", command=self.destroy).pack(side="right")
        self.save_btn = ttk.Button(buttons, text="Save", command=self.save)
        self.save_btn.pack(side="right", padx=4)
        self.bind("<Escape>", lambda _e: self.destroy())
        self.validate()
        self.entries["stack"].focus_set()
        if modal:
            self.wait_visibility()
            self.grab_set()

    def _looks(self, frame, settings: Settings) -> None:
        box = ttk.LabelFrame(frame, text="Looks", padding=8)
        box.pack(fill="x", pady=(0, 8))
        ttk.Label(box, text="Theme:").grid(row=0, column=0, sticky="w", padx=(0, 8))
        self.theme_var = tk.StringVar(master=self, value=THEME_LABELS[settings.theme])
        self.theme_box = ttk.Combobox(box, textvariable=self.theme_var, state="readonly", width=22,
                                      values=list(THEME_LABELS.values()))
        self.theme_box.grid(row=0, column=1, columnspan=3, sticky="w")
        self.theme_box.bind("<<ComboboxSelected>>", self._on_theme)
        ttk.Label(box, text="Font size:").grid(row=1, column=0, sticky="w", padx=(0, 8), pady=(6, 0))
        self.font_buttons = {}
        for column, (text, step) in enumerate(FONT_STEPS, start=1):
            button = self.font_buttons[step] = ttk.Button(box, text=text, command=lambda s=step: self.font_step(s))
            button.grid(row=1, column=column, sticky="w", padx=(0, 4), pady=(6, 0))

    def _on_theme(self, _event=None) -> None:
        chosen = {label: key for key, label in THEME_LABELS.items()}.get(self.theme_var.get())
        if chosen:
            self._bus.send("ui.theme_selected", theme=chosen)

    def font_step(self, step: int) -> None:
        self._bus.send("ui.font_size", step=step, desktop=styles.desktop_font_size(self))

    def _on_bridge(self, _event=None) -> None:
        chosen = {label: key for key, label in BRIDGE_LABELS.items()}.get(self.bridge_var.get())
        if chosen:
            self._bus.send("ui.bridge_selected", bridge=chosen)

    def _field(self, box, row: int, name: str, value: str) -> None:
        ttk.Label(box, text=LABELS[name] + ":").grid(row=2 * row, column=0, sticky="w", padx=(0, 8))
        var = self.vars[name] = tk.StringVar(value=value)
        if name == "openai_model":
            entry = ttk.Combobox(box, textvariable=var, width=44)
        else:
            entry = ttk.Entry(box, textvariable=var, width=46)
        entry.grid(row=2 * row, column=1, sticky="ew")
        self.entries[name] = entry
        error = self.errors[name] = ttk.Label(box, text="", foreground=self._palette.hint, wraplength=520)
        error.grid(row=2 * row + 1, column=1, sticky="w")
        var.trace_add("write", lambda *_: self.validate())

    def destroy(self) -> None:
        """Break the variable ↔ trace cycles here, on the Tk thread: a Tk variable collected later by a worker
        thread's garbage collection would call into Tk from that thread."""
        for var in self.vars.values():
            for _mode, callback in var.trace_info():
                var.trace_remove("write", callback)
        self.vars.clear()
        super().destroy()

    def values(self) -> dict[str, str]:
        return {name: var.get() for name, var in self.vars.items()}

    def validate(self) -> bool:
        """Every field's message from the rules, as typed; Save only when none is wrong."""
        errors = form.errors_of(self.values())
        for name, label in self.errors.items():
            label.configure(text=errors.get(name, ""))
        self.save_btn.state(["disabled"] if errors else ["!disabled"])
        return not errors

    def save(self) -> None:
        if self.validate():
            self.status.configure(text="Saving…")
            self._bus.send("ui.app_settings", values=self.values())

    def read_stack(self) -> None:
        self.stack_status.configure(text="Reading the stack's outputs…")
        self._bus.send("ui.read_stack", stack=self.vars["stack"].get(), region=self.vars["region"].get())

    def list_models(self) -> None:
        self.models_status.configure(text="Asking the server for its models…")
        self._bus.send("ui.list_models", base_url=self.vars["openai_base_url"].get())

    def browse_model(self) -> None:
        chosen = filedialog.askopenfilename(parent=self, title="Local model", initialdir=str(self._folders.path),
                                            filetypes=[("GGUF model", "*.gguf"), ("All files", "*")])
        if chosen:
            self._folders.remember(chosen)
            self.vars["local_model"].set(chosen)

    # --- outcomes (handed over by the main window) --------------------------------------------------------------------
    def on_stack_read(self, values, error) -> None:
        if error:
            self.stack_status.configure(text=error, foreground=self._palette.hint)
            return
        for name, value in values.items():
            self.vars[name].set(value)
        self.stack_status.configure(text="Filled in from the stack's outputs; Save to keep them.",
                                    foreground=self._palette.muted)

    def on_models_listed(self, models, error) -> None:
        if error:
            self.models_status.configure(text=error, foreground=self._palette.hint)
            return
        self.entries["openai_model"].configure(values=list(models))
        self.models_status.configure(text=f"{len(models)} model(s) available; pick one. {KEY_NOTE}",
                                     foreground=self._palette.muted)

    def on_form_invalid(self, errors) -> None:
        for name, message in errors.items():
            self.errors[name].configure(text=message)
        self.status.configure(text="Not saved: see the fields marked.")

    def on_form_saved(self, message) -> None:
        self.status.configure(text=message)
