"""The local issuer's HTML: the login page (the contract the desktop app and the tests rely on) and error pages.

Login page contract: ONE `<form method="post">` whose action is the authorize path itself, a hidden input for every
OAuth parameter of the request, an input `name="login_secret"` (hidden and filled when the request carried the
right secret, else a password field to type it into), a text input `name="username"` (prefilled "local-user") and a
submit button.
"""
from __future__ import annotations

from html import escape

DEFAULT_USERNAME = "local-user"

# The authorization request parameters the page carries through (hidden inputs), in this order.
OAUTH_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                "code_challenge_method", "nonce")
LOGIN_SECRET_FIELD = "login_secret"  # this run's secret, from the state file: only the user who started it signs in

_STYLE = ("body{font-family:sans-serif;max-width:28em;margin:4em auto;color:#222}"
          "input[type=text],input[type=password]{width:100%;padding:.4em;margin:.4em 0 1em}button{padding:.4em 1.2em}"
          ".hint{color:#666;font-size:.9em}.error{color:#a00}")


def login_page(action: str, params: dict[str, str], *, username: str = DEFAULT_USERNAME,
               message: str | None = None, login_secret: str | None = None) -> str:
    hidden = "\n".join(
        f'    <input type="hidden" name="{escape(name)}" value="{escape(params[name])}">'
        for name in OAUTH_PARAMS if params.get(name) is not None)
    if login_secret:
        secret = f'    <input type="hidden" name="{LOGIN_SECRET_FIELD}" value="{escape(login_secret)}">\n'
    else:
        secret = (f'    <label for="{LOGIN_SECRET_FIELD}">Login secret (<code>login_secret</code> in the local '
                  f'cloud\'s state file)</label>\n'
                  f'    <input type="password" id="{LOGIN_SECRET_FIELD}" name="{LOGIN_SECRET_FIELD}" '
                  f'autocomplete="off">\n')
    error = f'  <p class="error">{escape(message)}</p>\n' if message else ""
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>TL-FIF local cloud — sign in</title><style>{_STYLE}</style></head>
<body>
  <h1>TL-FIF local cloud</h1>
  <p class="hint">Local sign-in for the user who started this local cloud. The user name becomes the token's
    <code>sub</code> and email.</p>
{error}  <form method="post" action="{escape(action)}">
{hidden}
{secret}    <label for="username">User name</label>
    <input type="text" id="username" name="username" value="{escape(username)}" autocomplete="username" autofocus>
    <button type="submit" id="signin">Sign in</button>
  </form>
</body>
</html>
"""


def error_page(title: str, message: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>TL-FIF local cloud — {escape(title)}</title><style>{_STYLE}</style></head>
<body>
  <h1>{escape(title)}</h1>
  <p class="error">{escape(message)}</p>
</body>
</html>
"""
