"""Code shared by the router Lambda, the GPU watcher, the local cloud and the app: the HTTP API (`api`), the request
and job message (`jobs`), the Redis keys (`redis_keys`) and queue (`workqueue`), names, prices."""
