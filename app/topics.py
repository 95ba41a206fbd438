"""The app's one pypubsub topic tree: every topic, with its message data, is declared here and nowhere else.

Loaded at start-up by `app.bus.install_topics` (TOPIC_TREE_FROM_CLASS, unspecified topics fatal): a topic name with
a typo raises instead of silently going nowhere. A subtopic repeats its parent's arguments (pypubsub's rule).

Two kinds of branch:
- `ui.*`     what the user asked for. Published by views, on the Tk thread.
- the rest   outcomes. Published by controllers and by the pump (for results that worker threads queued).
A result that only the controller which started the work wants (a /ping answer, a chat read from disk) is no topic:
the worker hands it back to that controller through the pump (`Outbox.call`).
Every `job.*` message carries the `request_id` the app gave the prompt, so a late answer finds its exchange.

This module holds topic classes only: every public class here becomes a root topic.
"""


class ui:
    """Intents: what the user asked for."""

    class send:
        """The user asked to send the prompt (while an answer is coming, it waits for it: job.waiting)."""

        def msgDataSpec(prompt, branch_of=""):
            """- prompt: the raw text of the PromptBox
            - branch_of: '' for the next turn of the chat; else the request id of an earlier exchange whose
              prompt the user edited: the prompt is sent as that exchange's alternative (a new branch)"""

    class regenerate:
        """The user asked for another answer to the last prompt of the branch shown (Regenerate, Ctrl+R)."""

    class show_alternative:
        """The user pressed ‹ or › beside an exchange that has alternatives."""

        def msgDataSpec(request_id, step):
            """- request_id: the exchange shown now
            - step: -1 for the previous alternative, +1 for the next"""

    class stop_gpu:
        """The user pressed Stop GPU."""

    class keep_warm:
        """The user switched the Keep-warm toggle (hold the GPU's idle timer, up to the maximum lifetime)."""

        def msgDataSpec(on):
            """- on: True to keep the GPU warm, False to let the idle timer count again"""

    class cost_chart:
        """The user clicked the CostLabel: show this month's daily spend."""

    class idle_changed:
        """The user changed the idle timeout (the raw, unvalidated spinbox text)."""

        def msgDataSpec(value):
            """- value: what the spinbox holds, as typed"""

    class backend_selected:
        """The user picked a backend in the dropdown."""

        def msgDataSpec(backend):
            """- backend: the backend key (e.g. aws, openai)"""

    class api_key_entered:
        """The user typed an API key into the key dialog (held in memory only)."""

        def msgDataSpec(backend, key):
            """- backend: the backend key the key is for
            - key: the key; never logged, never saved"""

    class api_key_cancelled:
        """The user closed the key dialog without a key."""

        def msgDataSpec(backend):
            """- backend: the backend key the dialog was for"""

    class cancel:
        """The user asked to stop the request in flight, or to withdraw a prompt that waits to be sent."""

        def msgDataSpec(request_id):
            """- request_id: the request to cancel"""

    class new_chat:
        """The user asked for a new chat (New chat, Ctrl+N)."""

    class open_chat:
        """The user picked a chat in the sidebar."""

        def msgDataSpec(chat_id):
            """- chat_id: the chat to open"""

    class rename_chat:
        """The user typed a new title for a chat (unvalidated)."""

        def msgDataSpec(chat_id, title):
            """- chat_id: the chat
            - title: the title as typed"""

    class delete_chat:
        """The user confirmed deleting a chat."""

        def msgDataSpec(chat_id):
            """- chat_id: the chat to delete"""

    class chat_settings:
        """The user submitted the chat settings dialog (the raw, unvalidated texts)."""

        def msgDataSpec(chat_id, system, temperature, max_tokens):
            """- chat_id: the chat they are for
            - system: the system prompt
            - temperature: as typed
            - max_tokens: as typed"""

    class bridge_selected:
        """The user picked who answers while the GPU starts."""

        def msgDataSpec(bridge):
            """- bridge: nothing, openai or local"""

    class theme_selected:
        """The user picked a colour theme."""

        def msgDataSpec(theme):
            """- theme: light, dark or system"""

    class font_size:
        """Ctrl+= / Ctrl+- / Ctrl+0: a bigger, smaller or the desktop's font size."""

        def msgDataSpec(step, desktop):
            """- step: +1, -1, or 0 for the desktop's size
            - desktop: the desktop's own font size in points (what a step starts from when none was set)"""

    class export_chat:
        """The user asked to export a chat (Export…, Ctrl+E) to a file: .json → JSON, anything else → Markdown."""

        def msgDataSpec(chat_id, path):
            """- chat_id: the chat to export
            - path: the file to write"""


    class search:
        """The user typed in the search-all-chats box (Ctrl+Shift+F, Ctrl+K)."""

        def msgDataSpec(query):
            """- query: the text as typed"""

    class open_search_hit:
        """The user picked a search result: open its chat, scrolled to the exchange."""

        def msgDataSpec(chat_id, request_id):
            """- chat_id: the chat
            - request_id: the exchange that matched"""

    class app_settings:
        """The user pressed Save in the settings window (the raw, unvalidated texts)."""

        def msgDataSpec(values):
            """- values: {field: text} for app.models.app_settings_form.FIELDS"""

    class read_stack:
        """The user asked to fill the AWS fields from a deployed stack's outputs."""

        def msgDataSpec(stack, region):
            """- stack: the CloudFormation stack name
            - region: the AWS region ('' : the AWS CLI's)"""

    class list_models:
        """The user asked which models the OpenAI key can use."""

        def msgDataSpec(base_url):
            """- base_url: the server ('' : api.openai.com)"""

    class open_link:
        """The user clicked a link in an answer."""

        def msgDataSpec(url):
            """- url: the link's target, as the answer wrote it"""


class job:
    """Outcomes of one prompt, from submission to the final answer."""

    def msgDataSpec(request_id):
        """- request_id: the app's id for this prompt"""

    class rejected:
        """The prompt was not sent (empty, too long, too many waiting, or nothing to regenerate)."""

        def msgDataSpec(request_id, message):
            """- request_id: the app's id for this prompt
            - message: why, for the hint under the PromptBox"""

    class waiting:
        """The prompt was sent while an answer was coming: it waits, and is submitted when that answer ends."""

        def msgDataSpec(request_id, prompt, position):
            """- request_id: the app's id for this prompt (job.submitted carries the same id later)
            - prompt: the prompt text
            - position: 1 for the next to go"""

    class withdrawn:
        """A waiting prompt was cancelled before it was sent: nothing went to any backend."""

        def msgDataSpec(request_id):
            """- request_id: the app's id for this prompt"""

    class submitted:
        """The prompt was accepted by the app and handed to a backend."""

        def msgDataSpec(request_id, backend, backend_label, prompt, started_at):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - backend_label: backend name as the dropdown shows it
            - prompt: the prompt text
            - started_at: wall-clock time (epoch seconds) of the submission"""

    class queued:
        """The backend accepted the prompt."""

        def msgDataSpec(request_id, backend, status, eta_s, job_id):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - status: queued | starting (GPU booting) | streaming
            - eta_s: seconds until the GPU is expected ready (0 when it is)
            - job_id: the backend's own id for the job ('' when it has none)"""

    class retrying:
        """A call failed with a transient error; the client retries by itself."""

        def msgDataSpec(request_id, backend, message, attempt, delay_s):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - message: what to show the user
            - attempt: the retry number (1 = first retry)
            - delay_s: seconds until the next try"""

    class progress:
        """The answer grew."""

        def msgDataSpec(request_id, backend, text, tokens):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - text: the whole answer so far
            - tokens: tokens so far (0 when unknown)"""

    class done:
        """The answer is complete."""

        def msgDataSpec(request_id, backend, text, model, stats):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - text: the whole answer
            - model: the model that answered ('' when unknown)
            - stats: the answer's figures, a plain JSON-able dict (app.models.answer_stats: tokens, ttft_ms,
              tokens_per_s, latency_ms — from send to the last token, measured by the app —, cold_start_ms, gpu_ms,
              cost_usd, cost_eur, ...; absent figures are None)"""

    class cancelled:
        """The user stopped the answer (Stop / Esc) and the backend stopped generating; the text so far is kept."""

        def msgDataSpec(request_id, backend, text, model, stats):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - text: the answer as far as it got ('' when nothing was generated)
            - model: the model that answered ('' when unknown)
            - stats: as for job.done (tokens: those generated until the stop), with stats["stopped"] True"""

    class failed:
        """The prompt ended without an answer; the message names the backend."""

        def msgDataSpec(request_id, backend, message):
            """- request_id: the app's id for this prompt
            - backend: backend key
            - message: what went wrong, starting with the backend tag ([aws], [openai])"""


class gpu:
    """The GPU instance, as the app sees it."""

    class keep_warm:
        """What the Keep-warm toggle shows."""

        def msgDataSpec(on, until_ms, message):
            """- on: keep-warm is on
            - until_ms: when it ends (epoch ms; 0 when off)
            - message: a notice for the status line ('' when none): a failure, or why it went off"""

    class state:
        """What the status line shows about the GPU."""

        def msgDataSpec(state, text, progress, idle_left_s):
            """- state: unknown | stopped | starting | ready | stopping
            - text: the status line text
            - progress: 0..1 toward the boot ETA while starting, else -1
            - idle_left_s: seconds until the idle auto-stop (-1 when not counting)"""


class bridge:
    """The cold-start bridge: another model's answer to a prompt that waits for the GPU to start."""

    class answered:
        """The bridge answered `request_id`'s prompt."""

        def msgDataSpec(request_id, label, text, cost):
            """- request_id: the TinyLlama request it stands in for
            - label: what answered (e.g. 'OpenAI gpt-4o-mini')
            - text: its answer
            - cost: what it cost, as shown"""

    class failed:
        """The bridge could not answer (the TinyLlama answer comes all the same)."""

        def msgDataSpec(request_id, label, message):
            """- request_id: the TinyLlama request
            - label: what was asked
            - message: why it failed"""


class cost:
    """Spend, from GET /cost."""

    class updated:
        """A cost poll answered (or the route is absent)."""

        def msgDataSpec(text, data):
            """- text: what the CostLabel shows
            - data: the decoded /cost answer, or None"""

    class paused:
        """Cost polling paused or resumed (paused while the GPU cold-starts)."""

        def msgDataSpec(paused):
            """- paused: True while paused"""

    class chart:
        """Open (or raise) the daily-spend chart with the latest /cost answer."""

        def msgDataSpec(data):
            """- data: the latest decoded /cost answer, or None when there is none yet"""


class auth:
    """Sign-in (tokens never travel on the bus)."""

    class signing_in:
        """A sign-in started."""

        def msgDataSpec(message):
            """- message: what is happening (browser opened, local user)"""

    class signed_in:
        """A sign-in or refresh worked."""

        def msgDataSpec(user):
            """- user: who (email or sub), for the status line"""

    class failed:
        """A sign-in failed."""

        def msgDataSpec(message):
            """- message: why"""

    class key_needed:
        """A backend needs an API key: the view asks the user for it."""

        def msgDataSpec(backend, backend_label):
            """- backend: backend key
            - backend_label: backend name for the dialog"""


class settings:
    """The user's settings file."""

    class saved:
        """Settings were validated and written."""

        def msgDataSpec(idle, backend, bridge):
            """- idle: idle timeout, minutes
            - backend: backend key
            - bridge: who answers while the GPU starts: nothing, openai or local"""

    class form_invalid:
        """The settings window's values were refused; nothing was saved."""

        def msgDataSpec(errors):
            """- errors: {field: what is wrong}"""

    class form_saved:
        """The settings window's values are in force and saved."""

        def msgDataSpec(message):
            """- message: what to tell the user (e.g. that an AWS change applies at the next start)"""

    class stack_read:
        """A stack's outputs were read for the settings window (or could not be)."""

        def msgDataSpec(values, error):
            """- values: {api_url, client_id, auth_domain, region} as read ({} on error)
            - error: why not ('' when read)"""

    class models_listed:
        """The models the OpenAI key can use (or why they could not be listed)."""

        def msgDataSpec(models, error):
            """- models: model ids, sorted
            - error: why not ('' when listed)"""

    class invalid:
        """A value the user typed was refused; nothing was saved."""

        def msgDataSpec(field, message, current):
            """- field: which setting (idle)
            - message: the hint to show
            - current: the value still in force, to put back in the widget"""

    class appearance:
        """The theme and font size in force (at start, on a change, and once the desktop's scheme is known)."""

        def msgDataSpec(theme, palette, font_size):
            """- theme: the setting: light, dark or system
            - palette: the palette it resolves to: light or dark
            - font_size: points, 0 for the desktop's size"""

    class warning:
        """The settings file had a problem (corrupt: defaults in use, file kept aside)."""

        def msgDataSpec(message):
            """- message: what happened"""


class cloud:
    """The embedded local cloud (used when no AWS stack is configured)."""

    class ready:
        """The local cloud answered and the AWS backend points at it."""

        def msgDataSpec(api_url):
            """- api_url: its API base URL"""

    class failed:
        """The local cloud could not start."""

        def msgDataSpec(message):
            """- message: why"""


class chat:
    """Chats and their history (app.controllers.chat_controller)."""

    class listed:
        """What the sidebar shows."""

        def msgDataSpec(chats, current_id):
            """- chats: app.models.chat.ChatSummary rows, newest first (the current chat included, even if new)
            - current_id: the chat the window shows"""

    class opened:
        """The window shows another chat (opened, new, or the next one after a delete), or another branch of the
        open one: render it afresh."""

        def msgDataSpec(chat_id, title, exchanges, hidden, system, temperature, max_tokens):
            """- chat_id: the chat
            - title: its title
            - exchanges: the latest exchanges of the branch shown, oldest first, as plain dicts (the store's
              exchange fields; status 'pending' is an answer still coming), each with `alternative` and
              `alternatives` (n of m: its place among the exchanges sharing its parent, for ‹ n/m ›)
            - hidden: older exchanges not rendered (export shows them all)
            - system, temperature, max_tokens: the chat's settings"""

    class reveal:
        """Scroll the open chat to this exchange (a search result was picked)."""

        def msgDataSpec(request_id):
            """- request_id: the exchange to show"""

    class settings_saved:
        """A chat's settings were validated and are in force (and saved)."""

        def msgDataSpec(chat_id, system, temperature, max_tokens):
            """- chat_id: the chat
            - system, temperature, max_tokens: the settings now in force"""

    class settings_invalid:
        """A chat setting was refused; nothing changed."""

        def msgDataSpec(field, message):
            """- field: system | temperature | max_tokens
            - message: the hint to show"""

    class exported:
        """An export was written (or failed)."""

        def msgDataSpec(path, error):
            """- path: the file
            - error: why it failed ('' when written)"""

    class spend:
        """What the stored answers cost (app.models.spend): after start-up, each saved answer and each delete."""

        def msgDataSpec(chats, month):
            """- chats: chat id → Spend (its total)
            - month: Spend, this calendar month across the chats"""

    class notice:
        """A hint for the sidebar (an action refused while an answer is coming, older turns left out, ...)."""

        def msgDataSpec(message):
            """- message: what to show"""

    class warning:
        """The history store had a problem (unreadable: moved aside and started afresh; a write failed)."""

        def msgDataSpec(message):
            """- message: what happened, and where the old file is"""


class search:
    """Search across all chats."""

    class results:
        """What a search found, newest first."""

        def msgDataSpec(query, hits, error):
            """- query: the text it is for (a view ignores results for an older one)
            - hits: app.models.search.SearchHit rows (at most RESULT_LIMIT)
            - error: why there are none ('' when the search ran)"""


class answer:
    """How a finished answer is shown."""

    class rendered:
        """An answer's Markdown was parsed (off the Tk thread) into the segments the pane shows."""

        def msgDataSpec(request_id, text, segments):
            """- request_id: the exchange
            - text: the answer that was parsed (the pane ignores a render of an older text)
            - segments: app.models.markdown segments, [(text, tags)]"""


class clock:
    """Time passing, for views that show countdowns and spinners."""

    class tick:
        """Published by the pump a few times a second."""

        def msgDataSpec(now):
            """- now: time.monotonic()"""
