"""The GPU watcher (issue 2 §4, RQL 5.5/5.6/5.3): claims jobs from Redis, streams them through an engine (vLLM or
the built-in echo engine), rewrites the S3 result object while generating, stops its own instance when idle.

Run it with `python -m tlfif_watcher`; all configuration comes from the environment (see `config.py`).
"""
