"""Governed connections: psycopg's ``Connection`` and ``AsyncConnection`` subclassed.

``connect()`` takes the governance keywords (``policy``, ``identity``,
``environment``, ``governor``) off before psycopg sees the rest, opens the
connection, and hangs a governor on it. Every cursor the connection makes,
with the user's own ``cursor_factory`` or not, is a governed one.
"""

from __future__ import annotations

import logging
import sys
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache, partial
from typing import Any

import psycopg
from psycopg import ConnectionInfo, Notify, pq, sql
from psycopg.conninfo import conninfo_to_dict

from governed_db.driver._trusted import AsyncTrustedCursor, arun
from governed_db.driver.catalog import Catalog, columns_of
from governed_db.driver.cursor import Cursor, ServerCursor
from governed_db.driver.cursor_async import AsyncCursor, AsyncServerCursor
from governed_db.driver.cursor_factory import governed_class
from governed_db.driver.mask_counts import flush_all
from governed_db.driver.open_sessions import forget, track
from governed_db.driver.pgconn_guard import (
    TRUSTED_GLOBALS,
    GuardedHandle,
    guarded_view,
    trusted_namespace,
)
from governed_db.driver.pipelined import PipelineOutcomes
from governed_db.driver.plain import check_wait
from governed_db.driver.session_state import check_session_state
from governed_db.driver.side_channels import (
    masked_diagnostic_info,
    masked_error,
    masked_notify,
)
from governed_db.errors import GovernanceError
from governed_db.governor import Governor, Session, build_governor

__all__ = ["AsyncConnection", "Connection", "UnknownKeywordError"]

_LOG = logging.getLogger("psycopg")

GOVERNANCE_KEYWORDS = ("policy", "identity", "environment", "audit", "governor")


class UnknownKeywordError(TypeError, psycopg.ProgrammingError):
    """``connect()`` got a keyword that is neither governance's, psycopg's nor libpq's.

    It is a ``TypeError`` (a bad argument) and, as psycopg raises for an
    unknown connection option, a ``psycopg.ProgrammingError``.
    """

    __module__ = "governed_db"

    def __init__(self, message: str) -> None:
        psycopg.ProgrammingError.__init__(self, message)


@lru_cache(maxsize=1)
def _libpq_keywords() -> frozenset[str]:
    return frozenset(opt.keyword.decode() for opt in pq.Conninfo.get_defaults())


def _check_keywords(kwargs: dict[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in _libpq_keywords())
    if unknown:
        raise UnknownKeywordError(
            f"connect() got an unexpected keyword argument {unknown[0]!r}: it is neither "
            f"a governance keyword ({', '.join(GOVERNANCE_KEYWORDS)}), a psycopg "
            "argument, nor a libpq connection parameter"
        )


def _with_application_name(gate: Governor, conninfo: str, kwargs: dict[str, Any]) -> None:
    """Name the connection after the actor (for pgaudit/server logs) unless the user did."""
    name = gate.application_name()
    if (
        name
        and "application_name" not in kwargs
        and "application_name" not in conninfo_to_dict(conninfo)
    ):
        kwargs["application_name"] = name


def _apply_settings(conn: Any, settings: Mapping[str, str]) -> None:
    """Session settings (statement_timeout, ...) without opening a transaction."""
    for name, value in settings.items():
        res = conn.pgconn.exec_params(
            b"select set_config($1, $2, false)", [name.encode(), value.encode()]
        )
        if res.status != pq.ExecStatus.TUPLES_OK:
            message = (res.error_message or b"").decode(errors="replace").strip()
            raise GovernanceError(f"could not set {name} = {value!r} for this session: {message}")


async def _apply_settings_async(conn: Any, settings: Mapping[str, str]) -> None:
    """The async twin: through a trusted cursor, committed at once if not autocommit."""
    if not settings:
        return
    try:
        async with AsyncTrustedCursor(conn) as cur:
            for name, value in settings.items():
                await arun(cur, "select set_config(%s, %s, false)", (name, value))
        if not conn.autocommit:
            await conn.commit()  # nothing else has run on this brand-new connection
    except psycopg.Error as exc:
        raise GovernanceError(f"could not apply session settings {dict(settings)}: {exc}") from exc


def _session_for(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Session:
    params = conn.info.get_parameters()
    params.setdefault("port", str(conn.info.port))
    return Session(session_id=uuid.uuid4().hex, params=params)


_NOT_GOVERNED = "this connection has no governor (it was not opened by connect())"


def _mask_server_texts(conn: Any, pgconn: Any) -> None:
    """Route libpq's notices and notifications through masking (psycopg's own dispatch)."""
    wself = weakref.ref(conn)
    pgconn.notice_handler = partial(_notice, wself)
    pgconn.notify_handler = partial(_notify, wself)


def _notice(wself: Any, res: Any) -> None:
    self = wself()
    if not (self and self._notice_handlers):
        return
    encoding = self._gov_pgconn._encoding
    mask = self._gov_masker()
    info = masked_diagnostic_info(res, mask, encoding) if mask is not None else None
    diag = psycopg.errors.Diagnostic(res if info is None else info, encoding)
    for callback in self._notice_handlers:
        try:
            callback(diag)
        except Exception as exc:
            _LOG.exception("error processing notice callback '%s': %s", callback, exc)


def _notify(wself: Any, pgn: Any) -> None:
    self = wself()
    if not self:
        return
    encoding = self._gov_pgconn._encoding
    notify = Notify(pgn.relname.decode(encoding), pgn.extra.decode(encoding), pgn.be_pid)
    mask = self._gov_masker()
    if mask is not None:
        notify = masked_notify(notify, mask)
    if self._notify_handlers:
        for callback in self._notify_handlers:
            callback(notify)
    elif (backlog := self._notifies_backlog) is not None:
        backlog.append(notify)


class _Transaction(GuardedHandle, psycopg.Transaction):
    """psycopg's ``Transaction`` with a guarded ``pgconn``."""


class _AsyncTransaction(GuardedHandle, psycopg.AsyncTransaction):
    """psycopg's ``AsyncTransaction`` with a guarded ``pgconn``."""


class _SettlesOutcomes:
    """Pipeline hooks: each queued statement's outcome is settled when its result arrives."""

    _conn: Any
    level: int

    def _process_results(self, queued: Any, results: Any) -> None:
        outcomes = self._conn._gov_pipelined if queued is not None else None
        if outcomes is None:
            return super()._process_results(queued, results)  # type: ignore[misc, no-any-return]
        try:
            super()._process_results(queued, results)  # type: ignore[misc]
        except BaseException as exc:
            outcomes.arrived(queued[0], results, exc)
            raise
        outcomes.arrived(queued[0], results, None)

    def _exit(self, exc: BaseException | None) -> None:
        try:
            super()._exit(exc)  # type: ignore[misc]
        finally:
            if self.level == 0:
                self._conn._gov_pipelined.abandon(
                    "the pipeline ended before this statement's result arrived"
                )


class _Pipeline(_SettlesOutcomes, GuardedHandle, psycopg.Pipeline):
    """psycopg's ``Pipeline`` with a guarded ``pgconn``; outcomes settle as results arrive."""


class _AsyncPipeline(_SettlesOutcomes, GuardedHandle, psycopg.AsyncPipeline):
    """psycopg's ``AsyncPipeline`` with a guarded ``pgconn``; outcomes settle as results arrive."""


class _GovernedFactories:
    """Cursor-factory attributes that always hold governed classes."""

    _gov_state: tuple[Governor, Session] | None
    _gov_pgconn: Any
    #: The generator a wire-checked cursor just made (``check_wait`` skips it).
    _gov_checked_gen: Any = None
    #: Calls queued in pipeline mode, settled as their results arrive.
    _gov_pipelined: PipelineOutcomes
    #: Whether the session's end was recorded (closed, or seen broken).
    _gov_ended: bool = False
    #: Calls running while the caller holds them (stream, copy) -> how to settle each.
    _gov_inflight: dict[object, Callable[[BaseException | None], None]]
    #: Where result columns come from (table OID -> schema.table and column names).
    _gov_catalog: Catalog
    _gov_cursor_factory: type[Any]
    _gov_server_cursor_factory: type[Any]

    @property
    def cursor_factory(self) -> type[Any]:
        """The cursor class: the user's own, combined with the gate."""
        return self._gov_cursor_factory

    @cursor_factory.setter
    def cursor_factory(self, cls: type[Any]) -> None:
        self._gov_cursor_factory = governed_class(cls)

    @property
    def server_cursor_factory(self) -> type[Any]:
        """The named-cursor class: the user's own, combined with the gate."""
        return self._gov_server_cursor_factory

    @server_cursor_factory.setter
    def server_cursor_factory(self, cls: type[Any]) -> None:
        self._gov_server_cursor_factory = governed_class(cls)

    @property
    def pgconn(self) -> Any:
        """libpq's connection; outside psycopg and governed_db, a view that cannot send SQL."""
        real = self._gov_pgconn
        namespace = sys._getframe(1).f_globals
        if TRUSTED_GLOBALS.get(id(namespace)) or trusted_namespace(namespace):
            return real
        return guarded_view(self, real)

    @pgconn.setter
    def pgconn(self, value: Any) -> None:
        self._gov_pgconn = value

    @property
    def info(self) -> ConnectionInfo:
        """psycopg's ``ConnectionInfo``; its ``pgconn`` is the guarded view outside psycopg."""
        real = self._gov_pgconn
        if trusted_namespace(sys._getframe(1).f_globals):
            return ConnectionInfo(real)
        return ConnectionInfo(guarded_view(self, real))  # type: ignore[arg-type]

    def _exec_command(self, command: Any, result_format: Any = pq.Format.TEXT) -> Any:
        """psycopg's own commands, vetted: one snapshot, decided to be what they claim."""
        state = self._gov_state
        if state is not None:
            data = command.as_bytes(self) if isinstance(command, sql.Composable) else command  # type: ignore[arg-type]
            data = data.encode() if isinstance(data, str) else bytes(data)
            try:
                state[0].internal_command(state[1], data.decode("utf-8", errors="replace"))
            except GovernanceError as exc:
                state[0].driver_refused(state[1], "execute", None, exc)
                raise
            command = data
        return super()._exec_command(command, result_format)  # type: ignore[misc]

    def _gov_error(self, exc: psycopg.Error) -> psycopg.Error:
        """``exc``, or a copy whose server texts are masked when they quote data."""
        if getattr(exc, "_info", None) is None:  # not from the server
            return exc
        mask = self._gov_masker()
        return exc if mask is None else masked_error(exc, mask)

    def _gov_masker(self) -> Callable[[str], str] | None:
        """How to mask free text the server sends (None: nothing masks)."""
        state = self._gov_state
        return None if state is None else state[0].text_masker(state[1])

    def _gov_columns_of(self, cursor: Any) -> list[tuple[str, str | None, int]]:
        """The columns of ``cursor``'s current result, with their sources (for masking)."""
        return columns_of(cursor, self._gov_catalog)

    @property
    def governor(self) -> Governor:
        """The gate this connection's statements pass."""
        if self._gov_state is None:
            raise GovernanceError(_NOT_GOVERNED)
        return self._gov_state[0]

    @property
    def session(self) -> Session:
        """Who opened this connection, where it points, and its session id."""
        if self._gov_state is None:
            raise GovernanceError(_NOT_GOVERNED)
        return self._gov_state[1]

    def _gov_attach(self, governor: Governor) -> None:
        check_session_state(self.pgconn)
        session = governor.open_session(_session_for(self))  # type: ignore[arg-type]
        _apply_settings(self, session.settings)
        self._gov_state = (governor, session)
        track(self, governor)

    async def _gov_attach_async(self, governor: Governor) -> None:
        check_session_state(self.pgconn)
        session = governor.open_session(_session_for(self))  # type: ignore[arg-type]
        await _apply_settings_async(self, session.settings)
        self._gov_state = (governor, session)
        track(self, governor)

    def _gov_detach(self) -> None:
        inflight = self._gov_inflight
        while inflight:  # calls still running (stream, copy) end with the connection
            _, settle = inflight.popitem()
            settle(
                psycopg.OperationalError(
                    "the connection was closed while the statement was running"
                )
            )
        self._gov_end()
        self._gov_state = None

    def _gov_end(self, reason: str = "closed") -> None:
        """End the governed session once: ``closed``, ``broken`` (seen broken) or ``exit``."""
        state = self._gov_state
        if state is not None and not self._gov_ended:
            self._gov_ended = True
            forget(self)
            flush_all(self)  # what its cursors' last results masked, before the end
            state[0].end_session(state[1], reason)


class Connection(_GovernedFactories, psycopg.Connection[Any]):
    """A ``psycopg.Connection`` whose every statement passes the governor."""

    __module__ = "governed_db"

    def __init__(self, pgconn: Any, row_factory: Any = psycopg.rows.tuple_row) -> None:
        self._gov_state = None
        self._gov_catalog = Catalog()
        self._gov_pipelined = PipelineOutcomes()
        self._gov_inflight = {}
        self._gov_cursor_factory = Cursor
        self._gov_server_cursor_factory = ServerCursor
        super().__init__(pgconn, row_factory)
        _mask_server_texts(self, pgconn)

    @classmethod
    def connect(  # type: ignore[override]
        cls,
        conninfo: str = "",
        *,
        policy: Any = None,
        identity: Any = None,
        environment: str | None = None,
        audit: Any = None,
        governor: Governor | None = None,
        autocommit: bool = False,
        prepare_threshold: int | None = 5,
        context: Any = None,
        row_factory: Any = None,
        cursor_factory: Any = None,
        **kwargs: Any,
    ) -> Connection:
        """Open a governed connection; see ``governed_db.connect``."""
        _check_keywords(kwargs)
        gate = build_governor(
            policy=policy,
            identity=identity,
            environment=environment,
            audit=audit,
            governor=governor,
        )
        _with_application_name(gate, conninfo, kwargs)
        conn = super().connect(
            conninfo,
            autocommit=autocommit,
            prepare_threshold=prepare_threshold,
            context=context,
            row_factory=row_factory,
            cursor_factory=cursor_factory,
            **kwargs,
        )
        try:
            conn._gov_attach(gate)
        except BaseException:
            conn.close()
            raise
        return conn

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """psycopg's ``wait``; plain psycopg cursors are decided here, server texts masked."""
        try:
            if gen is self._gov_checked_gen:  # a wire-checked cursor's: its hooks check it
                self._gov_checked_gen = None
                return super().wait(gen, interval, timeout)
            plain = check_wait(self, gen)
            if plain is None:
                return super().wait(gen, interval, timeout)
            pending = plain.expect(self)
            try:
                result = super().wait(plain.gen, interval, timeout)
            except BaseException as exc:
                plain.failed(self, pending, exc)
                raise
            if pending is None:
                plain.settle(self, None)
                plain.shape(self)
            return result
        except psycopg.Error as exc:
            masked = self._gov_error(exc)
            if masked is exc:
                raise
        raise masked  # outside the handler: the unmasked error is not its context

    def notifies(
        self, *, timeout: float | None = None, stop_after: int | None = None
    ) -> Generator[Notify, None, None]:
        """psycopg's ``notifies()``; payloads are masked like a computed text column."""
        for notify in super().notifies(timeout=timeout, stop_after=stop_after):
            mask = self._gov_masker()
            yield notify if mask is None else masked_notify(notify, mask)

    @contextmanager
    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> Iterator[Any]:
        """psycopg's ``transaction()``, whose object shows only the guarded ``pgconn``."""
        tx = _Transaction(self, savepoint_name, force_rollback)
        if self._pipeline:
            with self.pipeline(), tx, self.pipeline():
                yield tx
        else:
            with tx:
                yield tx

    @contextmanager
    def pipeline(self) -> Iterator[Any]:
        """psycopg's ``pipeline()``, whose object shows only the guarded ``pgconn``."""
        with self.lock:
            self._check_connection_ok()
            if (pipeline := self._pipeline) is None:
                pipeline = self._pipeline = _Pipeline(self)
        try:
            with pipeline:
                yield pipeline
        finally:
            if pipeline.level == 0:
                with self.lock:
                    self._pipeline = None

    def close(self) -> None:
        """Close the connection (and its governed session)."""
        try:
            super().close()
        finally:
            if self.closed:
                self._gov_detach()


class AsyncConnection(_GovernedFactories, psycopg.AsyncConnection[Any]):
    """A ``psycopg.AsyncConnection`` whose every statement passes the governor."""

    __module__ = "governed_db"

    def __init__(self, pgconn: Any, row_factory: Any = psycopg.rows.tuple_row) -> None:
        self._gov_state = None
        self._gov_catalog = Catalog()
        self._gov_pipelined = PipelineOutcomes()
        self._gov_inflight = {}
        self._gov_cursor_factory = AsyncCursor
        self._gov_server_cursor_factory = AsyncServerCursor
        super().__init__(pgconn, row_factory)
        _mask_server_texts(self, pgconn)

    @classmethod
    async def connect(  # type: ignore[override]
        cls,
        conninfo: str = "",
        *,
        policy: Any = None,
        identity: Any = None,
        environment: str | None = None,
        audit: Any = None,
        governor: Governor | None = None,
        autocommit: bool = False,
        prepare_threshold: int | None = 5,
        context: Any = None,
        row_factory: Any = None,
        cursor_factory: Any = None,
        **kwargs: Any,
    ) -> AsyncConnection:
        """Open a governed async connection; see ``governed_db.connect``."""
        _check_keywords(kwargs)
        gate = build_governor(
            policy=policy,
            identity=identity,
            environment=environment,
            audit=audit,
            governor=governor,
        )
        _with_application_name(gate, conninfo, kwargs)
        conn = await super().connect(
            conninfo,
            autocommit=autocommit,
            prepare_threshold=prepare_threshold,
            context=context,
            row_factory=row_factory,
            cursor_factory=cursor_factory,
            **kwargs,
        )
        try:
            await conn._gov_attach_async(gate)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """psycopg's ``wait``; plain psycopg cursors are decided here, server texts masked."""
        try:
            if gen is self._gov_checked_gen:  # a wire-checked cursor's: its hooks check it
                self._gov_checked_gen = None
                return await super().wait(gen, interval, timeout)
            plain = check_wait(self, gen)
            if plain is None:
                return await super().wait(gen, interval, timeout)
            pending = plain.expect(self)
            try:
                result = await super().wait(plain.gen, interval, timeout)
            except BaseException as exc:
                plain.failed(self, pending, exc)
                raise
            if pending is None:
                plain.settle(self, None)
                plain.shape(self)
            return result
        except psycopg.Error as exc:
            masked = self._gov_error(exc)
            if masked is exc:
                raise
        raise masked  # outside the handler: the unmasked error is not its context

    async def notifies(
        self, *, timeout: float | None = None, stop_after: int | None = None
    ) -> AsyncGenerator[Notify, None]:
        """psycopg's ``notifies()``; payloads are masked like a computed text column."""
        async for notify in super().notifies(timeout=timeout, stop_after=stop_after):
            mask = self._gov_masker()
            yield notify if mask is None else masked_notify(notify, mask)

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[Any]:
        """psycopg's ``transaction()``, whose object shows only the guarded ``pgconn``."""
        tx = _AsyncTransaction(self, savepoint_name, force_rollback)
        if self._pipeline:
            async with self.pipeline(), tx, self.pipeline():
                yield tx
        else:
            async with tx:
                yield tx

    @asynccontextmanager
    async def pipeline(self) -> AsyncIterator[Any]:
        """psycopg's ``pipeline()``, whose object shows only the guarded ``pgconn``."""
        async with self.lock:
            self._check_connection_ok()
            if (pipeline := self._pipeline) is None:
                pipeline = self._pipeline = _AsyncPipeline(self)
        try:
            async with pipeline:
                yield pipeline
        finally:
            if pipeline.level == 0:
                async with self.lock:
                    self._pipeline = None

    async def close(self) -> None:
        """Close the connection (and its governed session)."""
        try:
            await super().close()
        finally:
            if self.closed:
                self._gov_detach()
