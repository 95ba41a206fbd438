"""Code shared by the router Lambda and the GPU watcher: names, job protocol, queue, results."""
