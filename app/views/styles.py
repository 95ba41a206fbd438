"""ttk styles and the colours of the plain Tk widgets, from one palette (app.models.theme): `install` once per
window, `apply` again when the theme changes. Also the font size: Tk's named fonts scaled together, so every widget
that uses them follows."""
from __future__ import annotations

import tkinter as tk
import weakref
from tkinter import font as tkfont
from tkinter import ttk

from app.models.theme import LIGHT, Palette, palette

SEND_STYLE = "Send.TButton"
STOP_STYLE = "StopGpu.TButton"
HINT_STYLE = "Hint.TLabel"    # an error or a refused value
MUTED_STYLE = "Muted.TLabel"  # hints and notices
SMALL_MUTED_STYLE = "SmallMuted.TLabel"
HINT_COLOR = palette(LIGHT).hint    # the light palette's, for code that has no window to ask
MUTED_COLOR = palette(LIGHT).muted
FOCUS_THICKNESS = 2
# per Tk application (its root): the palette in force, the named fonts' sizes as the desktop set them
_PALETTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DESKTOP_SIZES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# Tk's named fonts; TkDefaultFont is the reference the others keep their distance to.
NAMED_FONTS = ("TkDefaultFont", "TkTextFont", "TkFixedFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont",
               "TkSmallCaptionFont", "TkIconFont", "TkTooltipFont")


def install(root, p: Palette | None = None) -> ttk.Style:
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")  # a theme whose colours can be set on every platform
    apply(root, p or palette(LIGHT))
    return style


def current(widget) -> Palette:
    """The palette in force in `widget`'s application (light until one was applied)."""
    return _PALETTES.get(widget._root()) or palette(LIGHT)


def apply(root, p: Palette) -> None:
    """Colour every ttk style from `p`, and set the defaults plain Tk widgets created from now on take. Widgets that
    exist already and are not ttk (text areas, canvas, labels) are recoloured by their views' `apply_theme`."""
    _PALETTES[root._root()] = p
    style = ttk.Style(root)
    style.configure(".", background=p.background, foreground=p.foreground, fieldbackground=p.field,
                    bordercolor=p.border, lightcolor=p.background, darkcolor=p.border, troughcolor=p.field,
                    focuscolor=p.focus, selectbackground=p.select_bg, selectforeground=p.select_fg,
                    insertcolor=p.foreground, arrowcolor=p.foreground)
    style.map(".", background=[("disabled", p.background), ("active", p.hover)],
              foreground=[("disabled", p.disabled)])
    style.configure("TButton", background=p.field, focusthickness=FOCUS_THICKNESS)
    style.map("TButton", background=[("disabled", p.background), ("pressed", p.pressed), ("active", p.hover)],
              bordercolor=[("focus", p.focus)])
    style.configure("TCheckbutton", indicatorbackground=p.field, indicatorforeground=p.foreground)
    style.map("TCheckbutton", indicatorbackground=[("disabled", p.background), ("pressed", p.pressed)],
              background=[("focus", p.hover), ("active", p.hover)])
    for entry in ("TEntry", "TCombobox", "TSpinbox"):
        style.configure(entry, fieldbackground=p.field, foreground=p.foreground, insertcolor=p.foreground)
        style.map(entry, fieldbackground=[("readonly", p.field), ("disabled", p.background)],
                  foreground=[("readonly", p.foreground), ("disabled", p.disabled)],
                  bordercolor=[("focus", p.focus)], lightcolor=[("focus", p.focus)])
    style.configure("Treeview", background=p.field, fieldbackground=p.field, foreground=p.foreground)
    style.map("Treeview", background=[("selected", "focus", p.select_bg), ("selected", p.hover)],
              foreground=[("selected", "focus", p.select_fg), ("selected", p.foreground)],
              bordercolor=[("focus", p.focus)], lightcolor=[("focus", p.focus)])
    style.configure(HINT_STYLE, foreground=p.hint)
    style.configure(MUTED_STYLE, foreground=p.muted)
    style.configure(SMALL_MUTED_STYLE, foreground=p.muted, font="TkSmallCaptionFont")
    style.configure(SEND_STYLE, background=p.send, foreground="white", padding=(14, 6))
    style.map(SEND_STYLE, background=[("disabled", p.send_disabled), ("active", p.send_active)],
              foreground=[("disabled", "#eef5ee")])
    style.configure(STOP_STYLE, background=p.stop, foreground="white", padding=(10, 4))
    style.map(STOP_STYLE, background=[("disabled", p.stop_disabled), ("active", p.stop_active)],
              foreground=[("disabled", "#fbeaea")])
    # the Combobox's drop-down list and dialogs' plain widgets are Tk widgets: the option database colours them
    for pattern, value in (("*TCombobox*Listbox.background", p.field), ("*TCombobox*Listbox.foreground",
                                                                        p.foreground),
                           ("*TCombobox*Listbox.selectBackground", p.select_bg),
                           ("*TCombobox*Listbox.selectForeground", p.select_fg),
                           ("*Background", p.background), ("*Foreground", p.foreground),
                           ("*highlightColor", p.focus), ("*highlightBackground", p.background),
                           ("*insertBackground", p.foreground), ("*selectBackground", p.select_bg),
                           ("*selectForeground", p.select_fg), ("*activeBackground", p.hover),
                           ("*activeForeground", p.foreground)):
        root.option_add(pattern, value)
    if isinstance(root, (tk.Tk, tk.Toplevel)):
        root.configure(background=p.background)


def focus_ring(widget, p: Palette) -> None:
    """A plain Tk widget's visible focus ring in the palette's focus colour."""
    widget.configure(highlightthickness=FOCUS_THICKNESS, highlightcolor=p.focus, highlightbackground=p.background)


# --- font size --------------------------------------------------------------------------------------------------------
def desktop_sizes(root) -> dict[str, float]:
    """The named fonts' sizes in points as the desktop set them (remembered at the first call)."""
    top = root._root()
    sizes = _DESKTOP_SIZES.get(top)
    if sizes is None:
        per_point = top.winfo_fpixels("1p")
        sizes = {}
        for name in NAMED_FONTS:
            size = int(tkfont.nametofont(name, root=top).cget("size"))
            sizes[name] = size if size > 0 else -size / per_point  # negative sizes are pixels
        _DESKTOP_SIZES[top] = sizes
    return sizes


def desktop_font_size(root) -> int:
    return round(desktop_sizes(root)["TkDefaultFont"])


def apply_font_size(root, size: int) -> None:
    """Scale Tk's named fonts so that TkDefaultFont is `size` points (0: the desktop's sizes), the others keeping
    their distance to it."""
    sizes = desktop_sizes(root)
    delta = 0 if size == 0 else size - sizes["TkDefaultFont"]
    for name, points in sizes.items():
        tkfont.nametofont(name, root=root._root()).configure(size=max(4, round(points + delta)))
