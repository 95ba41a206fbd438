"""The app as the GUI check runs it, in a child process: `python -m app.cli.acceptance.gui_app WORKDIR`.

The same `Application` `tl-fif` builds, pointed at the acceptance target's endpoint (WORKDIR/endpoint.json, 0600:
the endpoint's fields and, for a stack, a signed-in user's ID token) instead of ~/.tl-fif.ini, with its settings and
history in WORKDIR. Nothing here types or clicks: the check sends real X key events to the window. What the window
shows is written, from the Tk thread, to WORKDIR/window.json every POLL_MS: the frame's X window id and, for each
answer, its status and the text the output pane shows. The app quits when its stdin closes (the check is gone).
"""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

ENDPOINT_FILE, WINDOW_FILE = "endpoint.json", "window.json"
POLL_MS = 200


def _write(path: Path, data: dict) -> None:
    part = path.with_suffix(".part")
    part.write_text(json.dumps(data), encoding="utf-8")
    os.replace(part, path)  # the check never reads half a file


def main(argv: list[str]) -> int:
    import tkinter as tk

    from app.application import Application
    from app.main import run_window
    from app.models.settings import Settings
    from app.services.endpoints import AwsEndpoint, FixedEndpoint

    workdir = Path(argv[0])
    spec = json.loads((workdir / ENDPOINT_FILE).read_text(encoding="utf-8"))
    endpoint = AwsEndpoint(**spec["endpoint"])
    try:
        root = tk.Tk()
    except tk.TclError as err:
        print(f"gui_app: cannot open a window ({err})", file=sys.stderr)
        return 2
    app = Application(root, settings=Settings(), settings_path=workdir / "settings.ini",
                      endpoints=FixedEndpoint(endpoint), history_path=workdir / "history", production=True)
    if spec.get("id_token"):
        # A stack signs in through the hosted login in a browser; the run brings a signed-in user's token instead.
        app.tokens.sign_in_with(spec["id_token"], endpoint)
    parent_gone = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        parent_gone.set()

    threading.Thread(target=watch_stdin, name="gui-app-stdin", daemon=True).start()
    window = app.window

    def report() -> None:
        if parent_gone.is_set():
            root.quit()
            return
        answers = [{"request_id": x.request_id, "status": x.status, "error": x.error,
                    "shown": window.output.answer_text(x.request_id)} for x in app.exchanges.exchanges]
        _write(workdir / WINDOW_FILE, {"window_id": int(root.wm_frame(), 16), "answers": answers,
                                       "gpu": window.status.gpu_label["text"],
                                       "focus": str(root.focus_get() or "")})
        root.after(POLL_MS, report)

    def ready() -> None:
        if not root.winfo_viewable():  # mapped first: the check focuses this window
            root.after(POLL_MS, ready)
            return
        window.prompt.prompt_box.focus_force()  # where a user's first keystroke goes
        report()

    return run_window(root, app, on_start=lambda: root.after(100, ready))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
