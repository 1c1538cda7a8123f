"""The WSGI app the gunicorn test serves: one log record per request, through whatever
logging configuration gunicorn's logconfig_dict set up; answers with the worker's pid."""

import logging
import os
from urllib.parse import parse_qs

log = logging.getLogger("app.requests")


def app(environ, start_response):
    request_id = parse_qs(environ.get("QUERY_STRING", "")).get("id", ["?"])[0]
    log.info("request %s served", request_id)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
