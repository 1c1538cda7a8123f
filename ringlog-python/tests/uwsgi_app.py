"""The WSGI app the uWSGI test serves. uWSGI has no logging configuration of its own, so the app
configures logging at import, as uWSGI apps do: in the master before it forks its workers
(uWSGI's default), or in each worker after the fork (`--lazy-apps`). One record per request;
answers with the worker's pid."""

import logging
import logging.config
import os
from urllib.parse import parse_qs

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"ring": {"class": "ringlog.Handler", "ring": os.environ["RINGLOG_TEST_RING"], "policy": "block"}},
        "loggers": {"app": {"handlers": ["ring"], "level": "INFO", "propagate": False}},
    }
)
log = logging.getLogger("app.requests")
logging.getLogger("app.boot").info("app loaded in pid %d", os.getpid())


def application(environ, start_response):
    request_id = parse_qs(environ.get("QUERY_STRING", "")).get("id", ["?"])[0]
    log.info("request %s served", request_id)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
