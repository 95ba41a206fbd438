"""The theme model without widgets: palettes, token colours, what "system" means per desktop, the font-size rule, and
the two settings in ~/.tl-fif.ini."""
from __future__ import annotations

import re
import subprocess

import pytest

from app.models import theme
from app.models.settings import Settings
from app.services import config_file


def test_both_palettes_define_the_same_colours_and_tokens_all_as_hex():
    light, dark = theme.palette(theme.LIGHT), theme.palette(theme.DARK)
    assert set(light.tokens) == set(dark.tokens)
    for p in (light, dark):
        colours = [v for k, v in vars(p).items() if k not in ("name", "tokens")] + list(p.tokens.values())
        assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours), p.name
    assert light.field != dark.field and light.foreground != dark.foreground


def test_a_token_type_takes_its_nearest_listed_parents_colour():
    p = theme.palette(theme.DARK)
    assert theme.token_color(p, "Token.Name.Function.Magic") == p.tokens["Name.Function"]
    assert theme.token_color(p, "Keyword.Namespace") == p.tokens["Keyword"]
    assert theme.token_color(p, "String.Doc") == p.tokens["String.Doc"]
    assert theme.token_color(p, "Token.Text") == p.answer


def test_pygments_own_token_names_and_every_highlighted_tag_have_a_theme_colour():
    from pygments import token

    from app.models import markdown
    p = theme.palette(theme.LIGHT)
    assert theme.token_color(p, str(token.String.Doc)) == p.tokens["String.Doc"]  # Token.Literal.String.Doc
    assert theme.token_color(p, str(token.Number.Integer)) == p.tokens["Number"]
    for token_type, tag in markdown.TOKEN_TAGS:
        assert theme.token_color(p, token_type) != p.answer, f"{tag} ({token_type}) would not be coloured"


def runner(answers: dict[str, str]):
    def run(command):
        key = " ".join(command)
        if key not in answers:
            raise subprocess.CalledProcessError(1, command)
        return answers[key]
    return run


GNOME = "gsettings get org.gnome.desktop.interface color-scheme"
GTK = "gsettings get org.gnome.desktop.interface gtk-theme"
MAC = "defaults read -g AppleInterfaceStyle"


@pytest.mark.parametrize("platform, answers, expected", [
    ("linux", {GNOME: "'prefer-dark'\n"}, theme.DARK),
    ("linux", {GNOME: "'prefer-light'\n", GTK: "'Adwaita-dark'"}, theme.LIGHT),
    ("linux", {GNOME: "'default'\n", GTK: "'Adwaita-dark'\n"}, theme.DARK),
    ("linux", {GNOME: "'default'\n", GTK: "'Adwaita'\n"}, theme.LIGHT),
    ("linux", {}, theme.LIGHT),                      # no gsettings, or no GNOME schema
    ("darwin", {MAC: "Dark\n"}, theme.DARK),
    ("darwin", {}, theme.LIGHT),                     # the key is missing in light mode
    ("sunos5", {GNOME: "'prefer-dark'"}, theme.LIGHT),
])
def test_the_desktop_scheme_is_read_where_it_can_be_and_light_otherwise(platform, answers, expected):
    assert theme.desktop_scheme(platform, run=runner(answers)) == expected


def test_windows_reads_apps_use_light_theme():
    assert theme.desktop_scheme("win32", apps_use_light=lambda: 0) == theme.DARK
    assert theme.desktop_scheme("win32", apps_use_light=lambda: 1) == theme.LIGHT

    def missing():
        raise OSError("no such value")
    assert theme.desktop_scheme("win32", apps_use_light=missing) == theme.LIGHT


def test_a_program_that_hangs_counts_as_light():
    def hangs(command):
        raise subprocess.TimeoutExpired(command, 2)
    assert theme.desktop_scheme("linux", run=hangs) == theme.LIGHT


def test_font_size_steps_from_the_desktops_size_within_bounds_and_ctrl_0_resets():
    assert theme.stepped_font_size(0, 1, desktop=10) == 11
    assert theme.stepped_font_size(11, -1, desktop=10) == 10
    assert theme.stepped_font_size(14, 0, desktop=10) == theme.DEFAULT_FONT_SIZE
    assert theme.stepped_font_size(theme.FONT_SIZE_MAX, 1, desktop=10) == theme.FONT_SIZE_MAX
    assert theme.stepped_font_size(theme.FONT_SIZE_MIN, -1, desktop=10) == theme.FONT_SIZE_MIN


@pytest.mark.parametrize("value", ["blue", "", "Dark mode"])
def test_an_unknown_theme_is_refused_by_name(value):
    with pytest.raises(ValueError, match="theme must be one of light, dark, system"):
        theme.check_theme(value)


@pytest.mark.parametrize("value", ["5", "33", "x", True])
def test_a_font_size_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="font_size"):
        theme.check_font_size(value)


def test_theme_and_font_size_are_saved_in_the_app_section(tmp_path):
    path = tmp_path / "tl-fif.ini"
    config_file.save(Settings(theme="dark", font_size=14), path)
    text = path.read_text()
    assert re.search(r"\[app\][^\[]*theme = dark[^\[]*font_size = 14", text)
    loaded = config_file.load(path).settings
    assert (loaded.theme, loaded.font_size) == ("dark", 14)
    assert config_file.load(tmp_path / "missing.ini").settings.theme == theme.SYSTEM
