"""The chat sidebar: New chat (Ctrl+N), the chats newest first, Rename, Delete (confirmed), Chat settings…,
Export… (Ctrl+E: Markdown or JSON), and the history's notices. Publishes ui.* intents; the chat controller
decides and answers with chat.* outcomes."""
from __future__ import annotations

import re
from tkinter import filedialog, ttk
from typing import Callable

from app.bus import Bus
from app.models.chat import NEW_CHAT_TITLE, ChatParams, ChatSummary
from app.models.folders import LastFolder
from app.models.spend import Spend, short_text, spend_text, spend_tooltip
from app.views import styles
from app.views.chat_dialogs import ChatSettingsDialog, ConfirmDialog, RenameDialog
from app.views.tooltip import Tooltip

WIDTH = 220
COST_WIDTH = 72  # the chat list's cost column


class Sidebar(ttk.Frame):
    def __init__(self, parent, bus: Bus, *, modal_dialogs: bool = True, folders: LastFolder | None = None):
        super().__init__(parent, padding=(8, 8, 0, 8), width=WIDTH)
        self._bus = bus
        self._modal = modal_dialogs
        self.folders = folders or LastFolder()
        self.current_id = ""
        self.titles: dict[str, str] = {}
        defaults = ChatParams()
        self.params: dict = {"system": defaults.system, "temperature": defaults.temperature,
                             "max_tokens": defaults.max_tokens}
        self.rename_dialog: RenameDialog | None = None
        self.confirm_dialog: ConfirmDialog | None = None
        self.settings_dialog: ChatSettingsDialog | None = None
        # Asked for the export file; returns '' to cancel. Tests replace it (there is no file dialog to click).
        self.ask_export_path: Callable[[], str] = self._ask_export_path

        self.new_btn = ttk.Button(self, text="New chat", command=self.new_chat)
        self.new_btn.pack(fill="x")
        ttk.Label(self, text="Ctrl+N new · Ctrl+E export", style=styles.SMALL_MUTED_STYLE).pack(anchor="w", pady=(2, 6))
        listing = ttk.Frame(self)
        listing.pack(fill="both", expand=True)
        self.tree = ttk.Treeview(listing, show="tree", selectmode="browse", height=14, columns=("cost",))
        self.tree.column("#0", width=WIDTH - 48 - COST_WIDTH, stretch=True)
        self.tree.column("cost", width=COST_WIDTH, stretch=False, anchor="e")
        scroll = ttk.Scrollbar(listing, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        row1, row2 = ttk.Frame(self), ttk.Frame(self)
        row1.pack(fill="x", pady=(6, 0))
        row2.pack(fill="x", pady=(4, 0))
        self.rename_btn = ttk.Button(row1, text="Rename", command=self.rename_current)
        self.rename_btn.pack(side="left", expand=True, fill="x")
        self.delete_btn = ttk.Button(row1, text="Delete", command=self.delete_current)
        self.delete_btn.pack(side="left", expand=True, fill="x", padx=(4, 0))
        self.settings_btn = ttk.Button(row2, text="Settings…", command=self.open_settings)
        self.settings_btn.pack(side="left", expand=True, fill="x")
        self.export_btn = ttk.Button(row2, text="Export…", command=self.export_current)
        self.export_btn.pack(side="left", expand=True, fill="x", padx=(4, 0))
        self.spends: dict[str, Spend] = {}
        self.month = Spend()
        self.chat_cost = ttk.Label(self, text="", style=styles.SMALL_MUTED_STYLE, wraplength=WIDTH - 10,
                                   justify="left", takefocus=1)
        self.chat_cost.pack(fill="x", pady=(6, 0))
        self.chat_cost_tip = Tooltip(self.chat_cost, "")
        self.month_cost = ttk.Label(self, text=spend_text("Chats this month", self.month),
                                    style=styles.SMALL_MUTED_STYLE, wraplength=WIDTH - 10, justify="left",
                                    takefocus=1)
        self.month_cost.pack(fill="x", pady=(2, 0))
        self.month_cost_tip = Tooltip(self.month_cost, spend_tooltip(self.month))
        self.warning = ttk.Label(self, text="", style=styles.HINT_STYLE, wraplength=WIDTH - 10,
                                 justify="left")
        self.warning.pack(fill="x", pady=(6, 0))
        self.notice = ttk.Label(self, text="", style=styles.MUTED_STYLE, wraplength=WIDTH - 10, justify="left")
        self.notice.pack(fill="x", pady=(4, 0))

        self.tree.bind("<<TreeviewSelect>>", self._on_select)
        self.tree.bind("<Double-1>", lambda _e: self.rename_current())
        self.tree.bind("<F2>", lambda _e: self.rename_current())
        self.tree.bind("<Delete>", lambda _e: self.delete_current())
        top = self.winfo_toplevel()
        for sequence in ("<Control-n>", "<Control-N>"):
            top.bind(sequence, self._on_ctrl_n, add="+")
        for sequence in ("<Control-e>", "<Control-E>"):
            top.bind(sequence, self._on_ctrl_e, add="+")
        bus.subscribe_table({
            "chat.listed": self.on_listed,
            "chat.opened": self.on_opened,
            "chat.notice": self.on_notice,
            "chat.warning": self.on_warning,
            "chat.exported": self.on_exported,
            "chat.settings_saved": self.on_settings_saved,
            "chat.settings_invalid": self.on_settings_invalid,
            "chat.spend": self.on_spend,
        })

    # --- intents ------------------------------------------------------------------------------------------------------
    def new_chat(self) -> None:
        self._bus.send("ui.new_chat")

    def _on_ctrl_n(self, _event) -> str:
        self.new_chat()
        return "break"

    def _on_ctrl_e(self, _event) -> str:
        self.export_current()
        return "break"

    def _on_select(self, _event=None) -> None:
        selected = self.tree.selection()
        if selected and selected[0] != self.current_id:
            self._bus.send("ui.open_chat", chat_id=selected[0])

    def _title(self) -> str:
        return self.titles.get(self.current_id, NEW_CHAT_TITLE)

    def rename_current(self) -> None:
        chat_id = self.current_id
        self.rename_dialog = RenameDialog(self.winfo_toplevel(), self._title(),
                                          lambda title: self._bus.send("ui.rename_chat", chat_id=chat_id,
                                                                       title=title),
                                          modal=self._modal)

    def delete_current(self) -> None:
        chat_id = self.current_id
        self.confirm_dialog = ConfirmDialog(
            self.winfo_toplevel(), "Delete chat",
            f"Delete “{self._title()}” and its history from this computer? This cannot be undone "
            "(Export keeps a copy).", "Delete",
            lambda: self._bus.send("ui.delete_chat", chat_id=chat_id), modal=self._modal)

    def open_settings(self) -> None:
        chat_id = self.current_id
        p = self.params
        self.settings_dialog = ChatSettingsDialog(
            self.winfo_toplevel(), self._title(), p["system"], p["temperature"], p["max_tokens"],
            lambda system, temperature, max_tokens: self._bus.send(
                "ui.chat_settings", chat_id=chat_id, system=system, temperature=temperature,
                max_tokens=max_tokens),
            modal=self._modal)

    def export_current(self, path: str | None = None) -> None:
        """Export the open chat to `path` (.json → JSON, else Markdown); None asks for the file."""
        if path is None:
            path = self.ask_export_path()
        if path:
            self.folders.remember(str(path))
            self._bus.send("ui.export_chat", chat_id=self.current_id, path=str(path))

    def _ask_export_path(self) -> str:
        if not self._modal:
            self.show_notice("Export needs a file name (no file dialog in this mode).")
            return ""
        name = re.sub(r"[^\w.-]+", "-", self._title()).strip("-.")[:60] or "chat"
        return filedialog.asksaveasfilename(parent=self.winfo_toplevel(), title="Export chat",
                                            initialdir=str(self.folders.path), initialfile=f"{name}.md",
                                            defaultextension=".md",
                                            filetypes=[("Markdown", "*.md"), ("JSON", "*.json")]) or ""

    # --- outcomes -----------------------------------------------------------------------------------------------------
    def show_notice(self, text: str) -> None:
        self.notice.configure(text=text)

    def on_listed(self, chats: list[ChatSummary], current_id: str) -> None:
        self.current_id = current_id
        self.titles = {c.id: c.title for c in chats}
        self.tree.delete(*self.tree.get_children())
        for chat in chats:
            self.tree.insert("", "end", iid=chat.id, text=chat.title, values=(short_text(self.spends.get(chat.id)),))
        if current_id in self.titles:
            self.tree.selection_set(current_id)
            self.tree.focus(current_id)
            self.tree.see(current_id)

    def on_spend(self, chats: dict[str, Spend], month: Spend) -> None:
        self.spends = dict(chats)
        self.month = month
        for chat_id in self.tree.get_children():
            self.tree.set(chat_id, "cost", short_text(self.spends.get(chat_id)))
        self.month_cost.configure(text=spend_text("Chats this month", month))
        self.month_cost_tip.set_text(spend_tooltip(month))
        self._show_chat_cost()

    def _show_chat_cost(self) -> None:
        chat = self.spends.get(self.current_id)
        self.chat_cost.configure(text=spend_text("This chat", chat) if chat else "")
        self.chat_cost_tip.set_text(spend_tooltip(chat) if chat else "")

    def on_opened(self, chat_id, title, exchanges, hidden, system, temperature, max_tokens) -> None:
        same = chat_id == self.current_id  # another branch of the same chat
        self.current_id = chat_id
        self._show_chat_cost()
        self.params = {"system": system, "temperature": temperature, "max_tokens": max_tokens}
        if same:
            return
        self.show_notice("")
        if self.settings_dialog is not None and self.settings_dialog.winfo_exists():
            self.settings_dialog.close()  # it was for the chat that is no longer shown

    def on_notice(self, message) -> None:
        self.show_notice(message)

    def on_warning(self, message) -> None:
        self.warning.configure(text=message)

    def on_exported(self, path, error) -> None:
        self.show_notice(f"Export failed: {error}" if error else f"Exported to {path}")

    def on_settings_saved(self, chat_id, system, temperature, max_tokens) -> None:
        if chat_id == self.current_id:
            self.params = {"system": system, "temperature": temperature, "max_tokens": max_tokens}
        if self.settings_dialog is not None and self.settings_dialog.winfo_exists():
            self.settings_dialog.close()
        self.show_notice("Chat settings saved.")

    def on_settings_invalid(self, field, message) -> None:
        if self.settings_dialog is not None and self.settings_dialog.winfo_exists():
            self.settings_dialog.show_error(field, message)
        else:
            self.show_notice(message)
