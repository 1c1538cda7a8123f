"""The Celery app the Celery test runs: a file-system broker and result backend (no server to
start), and ringlog.Handler added to Celery's task logger through the `after_setup_task_logger`
signal, as Celery's documentation says to add handlers. Celery sets its loggers up in the worker's
main process, so the handler is opened before the prefork pool forks its children."""

import os

import ringlog
from celery import Celery
from celery.signals import after_setup_task_logger
from celery.utils.log import get_task_logger

_state = os.environ["RINGLOG_TEST_CELERY_DIR"]
app = Celery("ringlog_test", broker="filesystem://", backend=f"file://{_state}/results")
app.conf.broker_transport_options = {
    "data_folder_in": f"{_state}/queue",
    "data_folder_out": f"{_state}/queue",
    "store_processed": False,
}
app.conf.broker_connection_retry_on_startup = True

log = get_task_logger("app.tasks")


@after_setup_task_logger.connect
def _log_tasks_to_the_ring(logger, **_):
    logger.addHandler(ringlog.Handler(os.environ["RINGLOG_TEST_RING"], policy="block"))


@app.task
def work(task_id):
    log.info("task %s ran", task_id)
    return os.getpid()
