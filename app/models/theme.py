"""The app's colours and font size: pure palettes (light, dark), the code-highlighting token colours, the cost chart's
colours, which palette "system" means on this desktop, and the font-size rule. No Tk here: app/views/styles.py
applies a palette to the widgets.

Token colours are keyed by Pygments token type names ("Keyword", "Name.Function", "String.Doc"); `token_color`
walks up to the nearest listed parent, so a highlighter can ask for any token type.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping

LIGHT, DARK, SYSTEM = "light", "dark", "system"
THEMES = (LIGHT, DARK, SYSTEM)
DEFAULT_THEME = SYSTEM

FONT_SIZE_MIN, FONT_SIZE_MAX = 6, 32
DEFAULT_FONT_SIZE = 0  # 0: the desktop's own size (Ctrl+0 goes back to it)


@dataclass(frozen=True)
class Palette:
    name: str
    background: str      # windows, frames, labels
    foreground: str
    field: str           # text areas, entries, the chat list
    border: str
    hover: str           # a button under the pointer
    pressed: str
    disabled: str        # text of a disabled control
    select_bg: str
    select_fg: str
    focus: str           # the focus ring
    muted: str           # hints, headers, stats
    hint: str            # an error or refused value
    prompt: str          # the user's prompt in the output pane
    answer: str
    stopped: str
    code_bg: str
    send: str
    send_active: str
    send_disabled: str
    stop: str
    stop_active: str
    stop_disabled: str
    chart_bg: str
    chart_bar: str
    chart_bar_hover: str
    chart_axis: str
    chart_grid: str
    chart_text: str
    link: str            # a Markdown link in an answer
    quote: str           # a Markdown block quote
    table_head: str
    find_hit: str        # background of a find / search hit
    find_current: str    # background of the hit Enter / F3 moved to
    tokens: Mapping[str, str] = field(default_factory=dict)


LIGHT_TOKENS = {
    "Comment": "#6a737d", "Keyword": "#d73a49", "Keyword.Constant": "#005cc5", "Keyword.Type": "#6f42c1",
    "Name.Builtin": "#005cc5", "Name.Function": "#6f42c1", "Name.Class": "#6f42c1", "Name.Decorator": "#e36209",
    "Name.Tag": "#22863a", "Name.Attribute": "#6f42c1", "String": "#032f62", "String.Doc": "#6a737d",
    "Number": "#005cc5", "Operator": "#d73a49", "Generic.Deleted": "#b31d28", "Generic.Inserted": "#22863a",
    "Generic.Heading": "#005cc5", "Error": "#b31d28",
}
DARK_TOKENS = {
    "Comment": "#8b949e", "Keyword": "#ff7b72", "Keyword.Constant": "#79c0ff", "Keyword.Type": "#d2a8ff",
    "Name.Builtin": "#79c0ff", "Name.Function": "#d2a8ff", "Name.Class": "#d2a8ff", "Name.Decorator": "#ffa657",
    "Name.Tag": "#7ee787", "Name.Attribute": "#d2a8ff", "String": "#a5d6ff", "String.Doc": "#8b949e",
    "Number": "#79c0ff", "Operator": "#ff7b72", "Generic.Deleted": "#ffa198", "Generic.Inserted": "#7ee787",
    "Generic.Heading": "#79c0ff", "Error": "#ffa198",
}

PALETTES: dict[str, Palette] = {
    LIGHT: Palette(
        name=LIGHT, background="#f3f3f3", foreground="#1f1f1f", field="#ffffff", border="#a8a8a8", hover="#e4e4e4",
        pressed="#d0d0d0", disabled="#9a9a9a", select_bg="#1565c0", select_fg="#ffffff", focus="#1565c0",
        muted="#5f6368", hint="#b00020", prompt="#1a4f8b", answer="#111111", stopped="#8a5a00", code_bg="#eceef1",
        send="#2e7d32", send_active="#388e3c", send_disabled="#9bbf9d", stop="#c62828", stop_active="#d32f2f",
        stop_disabled="#e0a3a3", chart_bg="#ffffff", chart_bar="#1565c0", chart_bar_hover="#42a5f5",
        chart_axis="#424242", chart_grid="#e0e0e0", chart_text="#212121", link="#1a56b8", quote="#4b5563",
        table_head="#111111",
        find_hit="#fff2a8", find_current="#ffb454", tokens=LIGHT_TOKENS),
    DARK: Palette(
        name=DARK, background="#202124", foreground="#e8eaed", field="#2b2c30", border="#5f6368", hover="#3c4043",
        pressed="#4a4d52", disabled="#80868b", select_bg="#8ab4f8", select_fg="#202124", focus="#8ab4f8",
        muted="#9aa0a6", hint="#f28b82", prompt="#8ab4f8", answer="#e8eaed", stopped="#fdd663", code_bg="#35363a",
        send="#2e7d32", send_active="#43a047", send_disabled="#3d5a3f", stop="#c62828", stop_active="#e53935",
        stop_disabled="#6b3434", chart_bg="#2b2c30", chart_bar="#8ab4f8", chart_bar_hover="#c6dafc",
        chart_axis="#bdc1c6", chart_grid="#3c4043", chart_text="#e8eaed", link="#8ab4f8", quote="#bdc1c6",
        table_head="#e8eaed",
        find_hit="#6b5a00", find_current="#a35200", tokens=DARK_TOKENS),
}


def palette(name: str) -> Palette:
    """The palette of a resolved theme name (light or dark)."""
    return PALETTES[name]


def token_color(p: Palette, token_type: str) -> str:
    """The colour of a Pygments token type ("Token.Name.Function.Magic" or "Name.Function"): the nearest listed
    parent's, else the palette's plain code colour."""
    # Pygments files strings and numbers under Literal (Token.Literal.String): the table names them without it
    name = token_type.removeprefix("Token").lstrip(".").removeprefix("Literal.")
    while name:
        if name in p.tokens:
            return p.tokens[name]
        name = name.rpartition(".")[0]
    return p.answer


def check_theme(value) -> str:
    theme = str(value).strip().lower()
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {value!r}")
    return theme


def check_font_size(value) -> int:
    message = f"font_size must be 0 (the desktop's) or a whole number of points from {FONT_SIZE_MIN} to {FONT_SIZE_MAX}"
    try:
        size = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if isinstance(value, bool) or (size != DEFAULT_FONT_SIZE and not FONT_SIZE_MIN <= size <= FONT_SIZE_MAX):
        raise ValueError(message)
    return size


def stepped_font_size(current: int, step: int, desktop: int) -> int:
    """Ctrl+= (step 1), Ctrl+- (-1), Ctrl+0 (0: back to the desktop's size). `current` 0 means the desktop's
    size, `desktop` (in points)."""
    if step == 0:
        return DEFAULT_FONT_SIZE
    size = (current or desktop) + step
    return min(FONT_SIZE_MAX, max(FONT_SIZE_MIN, size))


# --- what "system" means here ---------------------------------------------------------------------------------------
Runner = Callable[[list[str]], str]  # runs a command, returns its stdout; raises OSError / CalledProcessError


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=2, check=True).stdout


def _windows_apps_use_light() -> int:
    import winreg  # only on Windows

    with winreg.OpenKey(winreg.HKEY_CURRENT_USER,
                        r"Software\Microsoft\Windows\CurrentVersion\Themes\Personalize") as key:
        return int(winreg.QueryValueEx(key, "AppsUseLightTheme")[0])


def desktop_scheme(platform: str = sys.platform, run: Runner = _run,
                   apps_use_light: Callable[[], int] = _windows_apps_use_light) -> str:
    """LIGHT or DARK as the desktop says: GNOME's color-scheme (else a GTK theme named *dark*), Windows' 'apps use
    light theme', macOS' AppleInterfaceStyle. Anything unreadable is LIGHT. Runs a program: call off the Tk thread."""
    try:
        if platform.startswith("linux") or "bsd" in platform:
            scheme = run(["gsettings", "get", "org.gnome.desktop.interface", "color-scheme"])
            if "dark" in scheme.lower():
                return DARK
            if "light" in scheme.lower():
                return LIGHT
            gtk = run(["gsettings", "get", "org.gnome.desktop.interface", "gtk-theme"])
            return DARK if "dark" in gtk.lower() else LIGHT
        if platform == "win32":
            return LIGHT if apps_use_light() else DARK
        if platform == "darwin":  # the key exists only in dark mode: `defaults` fails in light mode
            return DARK if run(["defaults", "read", "-g", "AppleInterfaceStyle"]).strip() == "Dark" else LIGHT
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return LIGHT


def resolve(theme: str, scheme: Callable[[], str] = desktop_scheme) -> str:
    """The palette name a theme setting means: light or dark; system asks the desktop."""
    return scheme() if theme == SYSTEM else theme
