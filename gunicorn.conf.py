"""gunicorn settings for the fieldwatch server (read by `gunicorn 'server:create_app()'` from this folder).

Sync work is CPU-bound (every record is opened and its signature checked), so the
server runs one request per process, two processes per core. Sync workers take each
request from the shared socket when they are free, which spreads the load evenly;
threaded workers kept every keep-alive connection of a busy device on one process
(measured: one process saturated, the other three idle).

Sync workers should sit behind a buffering proxy (nginx, a cloud load balancer) so a
phone on a slow link never holds a worker: that proxy also ends TLS.
"""
import gc
import multiprocessing
import os

bind = os.environ.get("FIELDWATCH_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("FIELDWATCH_WORKERS", 2 * multiprocessing.cpu_count()))
worker_class = "sync"
timeout = 60  # a push of 500 records takes well under a second; a stuck worker is restarted
graceful_timeout = 30
max_requests = 10000  # recycle workers now and then; jitter avoids restarting them all at once
max_requests_jitter = 1000
accesslog = "-"  # access lines carry paths and status codes only, never bodies


def post_worker_init(worker):
    """Keep what the app made at start out of the garbage collector's full passes.

    Modules, mappers, compiled statements and the like (about 140,000 objects) live as long as the worker;
    without this each full pass scanned them all: 71 ms, landing in the middle of whichever push or pull
    happened to trigger it. New objects are still collected as before.
    """
    gc.freeze()
