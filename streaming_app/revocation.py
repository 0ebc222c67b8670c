"""Credentials re-checked for the life of a connection: revocation across processes.

A WebSocket is authenticated once, at its handshake, and may stay open for
days (and a server stream over HTTP, authenticated with its request, for
hours). Without more, it would keep its user as they were then: a deleted
token, a deactivated user, a changed password or a logout would not touch it,
nor would a user losing ``is_staff`` lose the staff-only methods on it.

Three mechanisms, from fastest to slowest:

1. **Signals → broker → every process.** When a token is deleted, a user is
   saved or deleted (deactivated, password changed, staff removed, groups or
   permissions changed) or a session ends (logout, a deleted session row),
   :func:`connect_signals`' receivers publish a signed notice on
   :data:`TOPIC` once the transaction commits. Each server process with
   authenticated connections listens (:class:`Guard`): a notice naming a
   token or a session closes the connections authenticated with it at once;
   a notice about a user re-validates that user's connections (one thread
   hop) and closes those whose credential no longer holds with **4401**.
2. **Per call.** A notice also bumps the user's generation in the process;
   a call on a connection that loaded its user before the bump re-reads the
   user first (:meth:`Credential.validate`), so it sees them as they are now.
   A call on an unchanged user costs one dict lookup.
3. **Periodically** (``STREAMING["REVALIDATE_INTERVAL"]``), and each time the
   listener (re)subscribes, every authenticated connection of the process is
   re-validated: the safety net for changes that send no signal
   (``QuerySet.update()``, raw SQL, sessions in a cache that expire) and for
   notices lost while the broker was away.

Notices carry no secret: tokens and sessions are named by a hash of their key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Iterable, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.core import signing

from . import exceptions
from .conf import streaming_settings

logger = logging.getLogger("streaming_app")

TOPIC = "streaming_app.revocation"
SALT = "streaming_app.revocation"
MAX_AGE = 60  # seconds a notice stays valid


def key_hash(key: str) -> str:
    """How a notice names a token or session: never the key itself (topics may be stored)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Credential:
    """What a connection was authenticated with, enough to tell later whether it still holds.

    ``password_hash`` is the user's session auth hash at the handshake (it
    changes with the password); ``token_key``/``token_model`` are set for a
    DRF token, ``session_key``/``session_engine`` for a Django session.
    """

    user_pk: str
    password_hash: str | None = None
    token_key: str | None = None
    token_model: Any = None
    session_key: str | None = None
    session_engine: str | None = None
    session_hash: str | None = None  # a ticket's: the hash of the session that asked for it

    @classmethod
    def of(cls, request: Any) -> Credential | None:
        """The credential of an authenticated DRF request (None: anonymous)."""
        user = request.user
        if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
            return None
        from rest_framework.authentication import SessionAuthentication, TokenAuthentication

        from .authentication import TicketAuthentication
        from .tickets import ticket_session_hash

        get_hash = getattr(user, "get_session_auth_hash", None)
        fields: dict[str, Any] = {"user_pk": str(user.pk), "password_hash": get_hash() if get_hash else None}
        authenticator = request.successful_authenticator
        auth = request.auth
        if isinstance(authenticator, TokenAuthentication) and getattr(auth, "key", None):
            fields.update(token_key=auth.key, token_model=type(auth))
        elif isinstance(authenticator, TicketAuthentication) and isinstance(auth, str):
            fields.update(session_hash=ticket_session_hash(auth))
        elif isinstance(authenticator, SessionAuthentication) or authenticator is None or _forced(authenticator):
            session = getattr(request._request, "session", None) or request._request.scope.get("session")
            key = getattr(session, "session_key", None)
            if key:
                fields.update(session_key=key, session_engine=settings.SESSION_ENGINE)
        return cls(**fields)

    @property
    def hashes(self) -> set[str]:
        """The hashed keys a notice may name this credential by."""
        hashes = {key_hash(k) for k in (self.token_key, self.session_key) if k}
        if self.session_hash:
            hashes.add(self.session_hash)
        return hashes

    def validate(self) -> Any:
        """The user as they are now, or None when the credential no longer holds (sync: the ORM).

        It fails when the user is gone or inactive, their password changed,
        the token was deleted, or the session ended or now names someone else.
        """
        return _validate_all([self])[self]

    def holds(self, user: Any, token_exists: bool) -> bool:
        """Whether the credential still holds for ``user`` as read now (None: gone); reads the session if any."""
        from django.contrib.auth import SESSION_KEY

        if user is None or not getattr(user, "is_active", True):
            return False
        get_hash = getattr(user, "get_session_auth_hash", None)
        if self.password_hash is not None and get_hash is not None and get_hash() != self.password_hash:
            return False
        if self.token_key is not None and not token_exists:
            return False
        if self.session_key is not None and self.session_engine is not None:
            store = import_module(self.session_engine).SessionStore(self.session_key)
            if str(store.get(SESSION_KEY)) != self.user_pk:
                return False
        return True


def _forced(authenticator: Any) -> bool:
    return type(authenticator).__name__ == "ForcedAuthentication"  # a user given in the scope


class Guarded(Protocol):
    """What the guard watches: a WebSocket consumer, or a server stream over HTTP (``transports.http.GuardedStream``)."""

    credential: Credential | None

    def credential_revoked(self) -> None:
        """End it: a WebSocket closes with 4401, an HTTP stream ends with ``unauthenticated``."""

    def credential_refreshed(self, user: Any) -> None:
        """The credential holds: calls from now on see ``user``."""


class Guard:
    """The authenticated connections of this process, and what keeps their credentials honest."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[Guarded]] = {}
        self._generations: dict[str, int] = {}
        self.notices = 0  # notices handled so far (a connection checks it across its authentication)
        self._task: asyncio.Task[None] | None = None
        self._manual: set[asyncio.AbstractEventLoop] = set()

    # -- connections ----------------------------------------------------------------

    def add(self, connection: Guarded) -> None:
        credential = connection.credential
        if credential is None:
            return
        self._by_user.setdefault(credential.user_pk, set()).add(connection)
        self._ensure_running()

    def discard(self, connection: Guarded) -> None:
        credential = connection.credential
        if credential is None:
            return
        connections = self._by_user.get(credential.user_pk)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[credential.user_pk]
                self._generations.pop(credential.user_pk, None)  # kept only while the user has connections
        if not self._by_user and self._task is not None:
            self._task.cancel()
            self._task = None

    def connections(self) -> list[Guarded]:
        return [c for group in self._by_user.values() for c in group]

    def generation(self, user_pk: str) -> int:
        """Bumped by every notice about the user: a connection with an older one re-reads its user."""
        return self._generations.get(user_pk, 0)

    def run_manually(self) -> None:
        """No listener on the running loop (a test's, which ends before the process): its owner calls :meth:`revalidate`."""
        self._manual.add(asyncio.get_running_loop())

    # -- notices ----------------------------------------------------------------------

    def handle(self, data: Any) -> None:
        """Act on one signed notice from :data:`TOPIC` (a bad or expired one is ignored)."""
        try:
            notice = signing.loads(data, salt=SALT, max_age=MAX_AGE)
        except (signing.BadSignature, TypeError):
            logger.warning("streaming_app: ignored a revocation notice with a bad or expired signature")
            return
        if not isinstance(notice, dict) or not isinstance(notice.get("u"), str):
            return
        user_pk = notice["u"]
        self.notices += 1
        connections = list(self._by_user.get(user_pk, ()))
        if not connections:
            return  # nothing of theirs here (a connection authenticating meanwhile checks ``notices``)
        self._generations[user_pk] = self._generations.get(user_pk, 0) + 1
        named = notice.get("k")
        if isinstance(named, str):
            for connection in connections:
                credential = connection.credential
                if credential is not None and named in credential.hashes:
                    connection.credential_revoked()
            return
        asyncio.get_running_loop().create_task(self.revalidate(connections))

    async def revalidate(self, connections: Iterable[Guarded] | None = None) -> None:
        """Check each connection's credential now (one thread hop); close those that no longer hold."""
        targets = [c for c in (self.connections() if connections is None else connections) if c.credential is not None]
        if not targets:
            return
        credentials = list({c.credential for c in targets if c.credential is not None})
        try:
            users = await database_sync_to_async(_validate_all)(credentials)
        except Exception:
            logger.exception("streaming_app: re-validating connection credentials failed; trying again later")
            return
        for connection in targets:
            credential = connection.credential
            if credential is None or credential not in users:
                continue
            user = users[credential]
            if user is None:
                connection.credential_revoked()
            else:
                connection.credential_refreshed(user)

    # -- the listener -----------------------------------------------------------------

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if loop in self._manual:
            return
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="streaming_app revocation")

    async def _run(self) -> None:
        periodic = asyncio.get_running_loop().create_task(self._periodic())
        try:
            await self._listen()
        finally:
            periodic.cancel()

    async def _listen(self) -> None:
        from .topics import subscribe

        while True:
            try:
                async with subscribe(TOPIC, buffer=10_000) as subscription:
                    # What changed while nobody listened (before the first subscribe, or an outage).
                    asyncio.get_running_loop().create_task(self.revalidate())
                    async for event in subscription:
                        try:
                            self.handle(event.data)
                        except Exception:
                            logger.exception("streaming_app: a revocation notice failed")
            except exceptions.StreamError as exc:
                logger.warning("streaming_app: the revocation topic failed (%s); subscribing again", exc)
            await asyncio.sleep(1.0)

    async def _periodic(self) -> None:
        while True:
            interval = streaming_settings.REVALIDATE_INTERVAL
            if interval is None:
                return
            await asyncio.sleep(interval)
            await self.revalidate()


BATCH = 1000  # primary keys per query


def _validate_all(credentials: list[Credential]) -> dict[Credential, Any]:
    """Each credential's user as now, or None: users and tokens read in batches, sessions one by one."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    users: dict[str, Any] = {}
    pks = sorted({c.user_pk for c in credentials})
    for start in range(0, len(pks), BATCH):
        try:
            found = model._default_manager.filter(pk__in=pks[start : start + BATCH])
            users.update((str(user.pk), user) for user in found)
        except (ValueError, TypeError):  # a key the model's field cannot take: that user is gone
            continue
    tokens: set[tuple[Any, str]] = set()
    by_model: dict[Any, list[str]] = {}
    for credential in credentials:
        if credential.token_key is not None:
            by_model.setdefault(credential.token_model, []).append(credential.token_key)
    for token_model, keys in by_model.items():
        for start in range(0, len(keys), BATCH):
            found_keys = token_model._default_manager.filter(key__in=keys[start : start + BATCH]).values_list("key", flat=True)
            tokens.update((token_model, key) for key in found_keys)
    results: dict[Credential, Any] = {}
    for credential in credentials:
        user = users.get(credential.user_pk)
        token_exists = (credential.token_model, credential.token_key) in tokens
        results[credential] = user if credential.holds(user, token_exists) else None
    return results


guard = Guard()


# -- notices from signals ---------------------------------------------------------------


def notify(user_pk: Any, key: str | None = None) -> None:
    """Tell every process that ``user_pk``'s credentials changed (``key``: only that token's or session's).

    Sent once the current transaction commits, so that the processes re-read
    what was committed. A broker that cannot be reached is logged, not
    raised: the change the signal reports must not fail for it, and the
    periodic re-validation still catches it.
    """
    from django.db import transaction

    notice: dict[str, Any] = {"u": str(user_pk)}
    if key:
        notice["k"] = key_hash(key)
    transaction.on_commit(lambda: _send(notice))


def _send(notice: dict[str, Any]) -> None:
    from .topics import publish

    try:
        publish(TOPIC, signing.dumps(notice, salt=SALT, compress=False))
    except Exception:
        logger.exception("streaming_app: could not publish a revocation notice")


def _token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify(instance.user_id, instance.key)


def _user_saved(sender: Any, instance: Any, update_fields: Any = None, created: bool = False, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no connection; a login changes nothing a connection relies on
    notify(instance.pk)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify(instance.pk)


def _user_relations_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    if not action.startswith("post_"):
        return
    from django.contrib.auth import get_user_model

    if isinstance(instance, get_user_model()):
        notify(instance.pk)
    elif pk_set:  # from the group's or permission's side: the users named
        for user_pk in pk_set:
            notify(user_pk)


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and getattr(user, "pk", None) is not None:
        notify(user.pk, getattr(session, "session_key", None) or None)


def _session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from django.contrib.auth import SESSION_KEY

    try:
        user_pk = instance.get_decoded().get(SESSION_KEY)
    except Exception:
        return
    if user_pk is not None:
        notify(user_pk, instance.session_key)


def connect_signals() -> None:
    """Connect the receivers that publish notices (from ``AppConfig.ready``)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import m2m_changed, post_delete, post_save

    uid = "streaming_app.revocation"
    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=f"{uid}.user_saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=f"{uid}.user_deleted")
    for name in ("groups", "user_permissions"):
        through = getattr(getattr(user_model, name, None), "through", None)
        if through is not None:
            m2m_changed.connect(_user_relations_changed, sender=through, dispatch_uid=f"{uid}.{name}")
    user_logged_out.connect(_logged_out, dispatch_uid=f"{uid}.logged_out")
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authtoken.models import Token

        post_delete.connect(_token_deleted, sender=Token, dispatch_uid=f"{uid}.token_deleted")
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(_session_deleted, sender=Session, dispatch_uid=f"{uid}.session_deleted")
