"""Outages of the services the platform talks to: named, retried with back-off, bounded.

:func:`naming_outages` turns a client's connection error into :class:`ServiceUnavailableError`,
whose message says which service did not answer and where (credentials removed), instead of a stack
of urllib3 or psycopg2 frames. In a step (the asset bodies and the IO managers are decorated with
:func:`names_outages`) an outage, and only an outage, is retried as :data:`SERVICE_RETRY_POLICY`
says (after 2 s, then 4 s, jittered); every client's own retries are bounded
(``settings.configure_service_clients``, the S3 resource's attempts, the warehouse's connect
timeout), so an outage fails the step in well under a minute, with the outage's message.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg

from claims_platform.core import settings

SERVICE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
MLFLOW, S3, WAREHOUSE = "the MLflow tracking server", "S3", "the warehouse"


class ServiceUnavailableError(ConnectionError):
    """A service the platform needs did not answer (after the client's bounded retries)."""

    def __init__(self, service: str, address: str | None, detail: str) -> None:
        self.service = service
        where = f" at {address}" if address else ""
        super().__init__(f"{service}{where} did not answer: {detail}")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _names(error: BaseException) -> set[str]:
    return {f"{type(e).__module__}.{type(e).__name__}" for e in _chain(error)} | {
        f"{base.__module__}.{base.__name__}" for e in _chain(error) for base in type(e).__mro__
    }


_S3_ERRORS = {
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectTimeoutError",
    "botocore.exceptions.ReadTimeoutError",
    "botocore.exceptions.ConnectionClosedError",
    "aiobotocore.httpsession.ClientConnectorError",
    "aiohttp.client_exceptions.ClientConnectorError",
    "aiohttp.client_exceptions.ServerDisconnectedError",
}
_WAREHOUSE_ERRORS = {
    "sqlalchemy.exc.OperationalError",
    "psycopg2.OperationalError",
    "sqlalchemy.exc.InterfaceError",
}
_HTTP_ERRORS = {
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "urllib3.exceptions.MaxRetryError",
}


def classify(error: BaseException) -> str | None:
    """Which service an exception says did not answer (:data:`MLFLOW`, :data:`S3`, :data:`WAREHOUSE`), or None."""
    names = _names(error)
    text = " ".join(str(e) for e in _chain(error))
    if names & _S3_ERRORS:
        return S3
    if names & _WAREHOUSE_ERRORS and ("connect" in text.lower() or "server closed" in text.lower()):
        return WAREHOUSE
    mlflow_failure = "mlflow.exceptions.MlflowException" in names and (
        "API request to" in text or "Max retries exceeded" in text
    )
    if mlflow_failure or (names & _HTTP_ERRORS and "mlflow" in text.lower()):
        return MLFLOW
    return None


_MLFLOW_REQUEST = re.compile(r"API request to (?P<base>\S+?)/(?:ajax-)?api/")


def address_of(service: str, error: BaseException | None = None) -> str | None:
    """Where ``service`` was reached: from the error when it says (MLflow's does), else from the
    platform's settings; with any credentials removed."""
    from claims_platform.core.redaction import redact_url

    said = _MLFLOW_REQUEST.search(" ".join(str(e) for e in _chain(error))) if error is not None else None
    if service == MLFLOW:
        uri = said.group("base") if said else os.environ.get(settings.ENV_MLFLOW_TRACKING_URI)
    elif service == S3:
        uri = os.environ.get(settings.ENV_S3_ENDPOINT_URL) or "AWS"
    else:
        uri = os.environ.get(settings.ENV_WAREHOUSE_URL)
    return redact_url(uri) if uri else None


def _detail(error: BaseException) -> str:
    from claims_platform.core.redaction import redact_url

    deepest = list(_chain(error))[-1]
    text = str(deepest).strip().splitlines()[0] if str(deepest).strip() else type(deepest).__name__
    return redact_url(text[:300])


def _attempt_of(args: tuple) -> int | None:
    """The step attempt (0 for the first) from a step's context among ``args``: an asset's or op's
    context, or an IO manager's input/output context; None outside a step."""
    for arg in args:
        if isinstance(arg, dg.AssetExecutionContext | dg.OpExecutionContext):
            return arg.retry_number
        if isinstance(arg, dg.InputContext | dg.OutputContext):
            step = getattr(arg, "_step_context", None)  # None when built outside a step (tests, tools)
            return step.previous_attempt_count if step is not None else None
    return None


def _outage_of(error: BaseException) -> ServiceUnavailableError | None:
    if isinstance(error, ServiceUnavailableError):
        return error
    service = classify(error)
    if service is None:
        return None
    outage = ServiceUnavailableError(service, address_of(service, error), _detail(error))
    outage.__cause__ = error
    return outage


@contextmanager
def naming_outages(attempt: int | None = None) -> Iterator[None]:
    """Re-raise a service's connection failure as :class:`ServiceUnavailableError` naming the service.

    Inside a step (``attempt`` given: 0 for the first), an outage asks Dagster for another attempt
    after :data:`SERVICE_RETRY_POLICY`'s back-off while attempts remain, and fails the step with the
    outage's own message on the last. Anything else (a bad input, a refused decision) is raised as
    it is, at once: only outages are retried.
    """
    try:
        yield
    except dg.RetryRequested:
        raise
    except Exception as error:
        outage = _outage_of(error)
        if outage is None:
            raise
        if attempt is None or attempt >= SERVICE_RETRY_POLICY.max_retries:
            if outage is error:
                raise
            raise outage from error
        raise dg.RetryRequested(
            max_retries=SERVICE_RETRY_POLICY.max_retries,
            seconds_to_wait=SERVICE_RETRY_POLICY.calculate_delay(attempt + 1),
        ) from outage


F = TypeVar("F", bound=Callable)


def names_outages(fn: F | None = None, *, retry: bool = True):
    """``fn`` (a function or a generator function: an asset's body, an IO manager's method) run under
    :func:`naming_outages`; in a step, an outage is retried unless ``retry=False``."""
    if fn is None:
        return functools.partial(names_outages, retry=retry)

    def attempt(args: tuple) -> int | None:
        return _attempt_of(args) if retry else None

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with naming_outages(attempt(args)):
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        with naming_outages(attempt(args)):
            return fn(*args, **kwargs)

    return function
