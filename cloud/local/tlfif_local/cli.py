"""`tl-fif cloud up|token` (also `python -m tlfif_local up|token`).

    tl-fif cloud up [--port N] [--boot-seconds S] [--engine echo|URL] [--model PATH.gguf [--ctx N]]
                    [--minute-seconds S] [--echo-delay-ms MS]
        Runs the whole backend on loopback in the foreground until Ctrl+C / SIGTERM. The first stdout line is one
        JSON object {"api_url","issuer","authorize_url","token_url","jwks_url","client_id","redirect_uri","region"};
        after it, one JSON access-log line per API request. Component logs go to stderr.
        --engine URL points the watcher at an OpenAI-compatible server (llama.cpp server, Ollama, vLLM), e.g.
        http://127.0.0.1:8080/v1. --model runs llama-cpp-python's server with that GGUF on the GPU node
        (default: `[local] model` in ~/.tl-fif.ini; none: the echo engine). Exit 2 when redis-server is missing,
        the model cannot be served (missing, not GGUF, too big for free memory, port in use) or an option is wrong.

    tl-fif cloud token [--user NAME] [--expires-in SECONDS]
        Prints one ID token from the running local cloud's issuer (negative --expires-in: already expired).
        Exit 2 when no local cloud is running.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

from .state import ENV_LOGIN_SECRET, ENV_STATE_PATH, read_state, remove_state, state_path, write_state

EXIT_USAGE = 2


class _Shutdown(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM (BaseException: no `except Exception` swallows it)."""


def _parser() -> argparse.ArgumentParser:
    from tlfif_common import names

    parser = argparse.ArgumentParser(prog="tl-fif cloud", description="The TL-FIF local cloud.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the local cloud in the foreground")
    up.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free port)")
    up.add_argument("--issuer-port", type=int, default=0, help="OIDC issuer port (default: a free port)")
    up.add_argument("--boot-seconds", type=float, default=8.0,
                    help="seconds from StartInstances until the watcher runs (default 8)")
    up.add_argument("--engine", default="echo",
                    help="'echo' (default) or the base URL of an OpenAI-compatible server, e.g. "
                         "http://127.0.0.1:8080/v1")
    up.add_argument("--model", default=None,
                    help="a GGUF model file the GPU node serves with llama-cpp-python (default: [local] model in "
                         "~/.tl-fif.ini; none: the echo engine)")
    up.add_argument("--ctx", type=int, default=None, help="the local model's context window in tokens "
                                                          "(default 2048)")
    up.add_argument("--engine-port", type=int, default=0, help="the local model server's port (default: free)")
    up.add_argument("--echo-delay-ms", type=int, default=None, help="echo engine delay between words")
    up.add_argument("--minute-seconds", type=float, default=None,
                    help=f"length of an idle 'minute' for the watcher and keep-warm (default 60, or "
                         f"${names.ENV_MINUTE_SECONDS})")
    up.add_argument("--throttle-rate", type=float, default=names.API_THROTTLE_RATE,
                    help=f"stage throttling, requests/s (default {names.API_THROTTLE_RATE}, as the API template)")
    up.add_argument("--throttle-burst", type=int, default=names.API_THROTTLE_BURST,
                    help=f"stage throttling burst (default {names.API_THROTTLE_BURST})")
    up.add_argument("--user-rps", type=int, default=None,
                    help="the router's per-user limit, requests/s (default: the router's, 5)")
    up.add_argument("--exit-with-stdin", action="store_true",
                    help="also stop when stdin reaches end of file (an embedding parent went away)")
    up.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    up.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                    help="start broken on purpose, to see a check fail (see tlfif_local/faults.py)")
    token = sub.add_parser("token", help="print an ID token from the running local cloud")
    token.add_argument("--user", default="local-user", help="user name (default local-user)")
    token.add_argument("--expires-in", type=int, default=3600,
                       help="seconds until the token expires (default 3600; negative: already expired)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "up":
        return _up(args)
    return _token(args)


# --- up -----------------------------------------------------------------------------------------------------
def _engine_ok(engine: str) -> bool:
    if engine == "echo":
        return True
    parts = urlsplit(engine)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _configured_model() -> str:
    """$TLFIF_LOCAL_MODEL, else `[local] model` in the app's settings file (the app runs this command)."""
    from tlfif_common import names

    if os.environ.get(names.ENV_LOCAL_MODEL, "").strip():
        return os.environ[names.ENV_LOCAL_MODEL].strip()
    try:
        from app.services.config_file import load
    except ImportError:  # the cloud installed without the app
        return ""
    return load().settings.local_model


def _up(args) -> int:
    if not _engine_ok(args.engine):
        print(f"tl-fif cloud up: --engine must be 'echo' or an http(s):// URL, got {args.engine!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.boot_seconds < 0 or (args.minute_seconds is not None and args.minute_seconds <= 0):
        print("tl-fif cloud up: --boot-seconds must be ≥ 0 and --minute-seconds > 0", file=sys.stderr)
        return EXIT_USAGE
    from .faults import parse_faults

    try:
        faults = parse_faults(args.fault)
    except ValueError as err:
        print(f"tl-fif cloud up: --fault: {err}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from .cloud import CloudOptions, LocalCloud
    from .engine_server import DEFAULT_CONTEXT, EngineServerError
    from .model_file import ModelError
    from .redis_server import RedisServerMissing

    # stdout carries the info line and the access log only; anything else printed (the router's JSON log lines,
    # which go to the current sys.stdout as on Lambda) goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr
    out_lock = threading.Lock()

    def emit(obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        with out_lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    signalled: list[int] = []  # a plain list, no lock: a signal can land while this handler runs

    def on_signal(signum, frame):
        if not signalled:
            signalled.append(signum)
            raise _Shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_signal)

    if args.model and args.engine != "echo":
        print("tl-fif cloud up: give --model (a GGUF the GPU node serves) or --engine URL, not both", file=sys.stderr)
        return EXIT_USAGE
    # An explicit --engine URL wins over a configured model.
    model = args.model if args.model is not None else (_configured_model() if args.engine == "echo" else "")
    if args.ctx is not None and args.ctx < 16:
        print("tl-fif cloud up: --ctx must be at least 16 tokens", file=sys.stderr)
        return EXIT_USAGE
    options = CloudOptions(port=args.port, issuer_port=args.issuer_port, boot_seconds=args.boot_seconds,
                           engine=args.engine, model=model or None, context=args.ctx or DEFAULT_CONTEXT,
                           engine_port=args.engine_port,
                           echo_delay_ms=args.echo_delay_ms, minute_seconds=args.minute_seconds,
                           throttle_rate=args.throttle_rate, throttle_burst=args.throttle_burst,
                           user_rps=args.user_rps, login_secret=os.environ.pop(ENV_LOGIN_SECRET, "") or None,
                           faults=faults)
    cloud = LocalCloud(options, access_log=emit)
    log = logging.getLogger("tlfif_local.cli")
    pid = os.getpid()
    code = 0
    info = None
    try:
        try:
            info = cloud.start()
        except (RedisServerMissing, ModelError, EngineServerError) as err:
            print(f"tl-fif cloud up: {err}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as err:
            print(f"tl-fif cloud up: could not start: {err}", file=sys.stderr)
            return 1
        assert cloud.issuer is not None
        # Tests reach Redis and moto through these to set what only a running system would (the cost reporter's
        # figures) and to read state the API does not show (keep-warm after /stop). The file is 0600: the run's
        # secrets stay with the user who started it.
        path = write_state({"pid": pid, "info": info, "admin_token_url": cloud.issuer.admin_token_url,
                            "admin_secret": cloud.issuer.admin_secret, "login_secret": cloud.issuer.login_secret,
                            "redis_url": cloud.redis.url, "aws_endpoint_url": cloud.aws.resources.endpoint_url,
                            "aws_credentials": cloud.aws.credentials})
        emit(info)
        log.info("[cloud] up: API %s, issuer %s (state file %s)", info["api_url"], info["issuer"], path)
        if args.exit_with_stdin:
            threading.Thread(target=_watch_stdin, args=(pid,), name="stdin-watch", daemon=True).start()
        while True:  # until a signal's handler raises _Shutdown here
            time.sleep(1.0)
    except _Shutdown:
        log.info("[cloud] stopping")
    except Exception:
        log.exception("[cloud] failed")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cloud.stop()
        if info is not None:
            remove_state(pid)
            log.info("[cloud] stopped")
    if info is not None:
        # Everything is stopped and nothing is left to save: skip the interpreter's teardown of moto's large
        # in-memory models (over a second) so that a stop is quick.
        logging.shutdown()
        for stream in (out, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _watch_stdin(pid: int) -> None:
    """Stop the cloud when stdin closes: the embedding process went away (even if it was killed)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os.kill(pid, signal.SIGTERM)


# --- token --------------------------------------------------------------------------------------------------
def _token(args) -> int:
    import requests

    state = read_state()
    if state is None:
        print(f"tl-fif cloud token: no local cloud is running (start one with 'tl-fif cloud up'; "
              f"looked for {state_path()}, override with ${ENV_STATE_PATH})", file=sys.stderr)
        return EXIT_USAGE
    try:
        answer = requests.post(state["admin_token_url"], timeout=10,
                               headers={"Authorization": f"Bearer {state['admin_secret']}"},
                               json={"user": args.user, "expires_in": args.expires_in})
    except (requests.RequestException, KeyError) as err:
        print(f"tl-fif cloud token: the local cloud (pid {state.get('pid')}) does not answer: {err}",
              file=sys.stderr)
        return EXIT_USAGE
    if answer.status_code != 200:
        try:
            message = answer.json().get("error")
        except ValueError:
            message = answer.text[:200]
        print(f"tl-fif cloud token: refused: {message}", file=sys.stderr)
        return EXIT_USAGE
    print(answer.json()["id_token"])
    return 0
