"""ttk styles: the green SendBtn and the red StopGpuBtn."""
from __future__ import annotations

from tkinter import ttk

SEND_STYLE = "Send.TButton"
STOP_STYLE = "StopGpu.TButton"
HINT_COLOR = "#b00020"
MUTED_COLOR = "#5f6368"


def install(root) -> ttk.Style:
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")  # a theme whose button colours can be set on every platform
    style.configure(SEND_STYLE, background="#2e7d32", foreground="white", padding=(14, 6))
    style.map(SEND_STYLE, background=[("disabled", "#9bbf9d"), ("active", "#388e3c")],
              foreground=[("disabled", "#eef5ee")])
    style.configure(STOP_STYLE, background="#c62828", foreground="white", padding=(10, 4))
    style.map(STOP_STYLE, background=[("disabled", "#e0a3a3"), ("active", "#d32f2f")],
              foreground=[("disabled", "#fbeaea")])
    return style
