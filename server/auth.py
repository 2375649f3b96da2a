"""Who is asking: Flask-Login sessions for pages, personal access tokens for the JSON API.

- Pages: ``@page_roles(...)``. A person signs in with a password (werkzeug
  scrypt hash). The session is signed, HttpOnly, SameSite=Lax and ends
  after ``SESSION_MINUTES`` without a request (checked here on the server,
  not only by the cookie's age); changing a password ends every session of
  that person, because the session id carries a fingerprint of the hash.
- API: ``@api_roles(...)``. ``Authorization: Bearer fwp_...`` only; the API
  never reads the session cookie, so it needs no CSRF token.

Both put a :class:`server.services.people.Scope` on ``g.scope``; services
check regions with it. Forms are protected by Flask-WTF's CSRF token
(every dashboard POST, see :func:`csrf_protect`).
"""
from __future__ import annotations

import functools
import hashlib
import time

from flask import current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from .errors import DomainError, Forbidden, Unauthorized
from .extensions import db
from .models import User
from .services import people

login_manager = LoginManager()
login_manager.session_protection = "basic"


class Principal(UserMixin):
    """The signed-in person as Flask-Login sees it; wraps the User row."""

    def __init__(self, user: User):
        self.user = user
        self.scope = people.Scope.of(user)

    def get_id(self) -> str:
        return f"{self.user.id}:{_fingerprint(self.user)}"

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    @property
    def role(self) -> str:
        return self.user.role


def _fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:12]


@login_manager.user_loader
def _load(session_id: str):
    user_id, _, fingerprint = (session_id or "").partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active or fingerprint != _fingerprint(user):
        return None
    return Principal(user)


@login_manager.unauthorized_handler
def _unauthorized():
    return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))


def init_app(app) -> None:
    """Bind Flask-Login and the session rules to the app."""
    from datetime import timedelta

    login_manager.init_app(app)
    app.before_request(_fresh_identity)
    app.permanent_session_lifetime = timedelta(minutes=int(app.config["SESSION_MINUTES"]))
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(seconds=0)  # no "remember me": sessions end


def _fresh_identity() -> None:
    # Each request finds out anew who is asking. (``g`` outlives a request when an
    # app context was already pushed, as in tests; a cached identity must not leak.)
    for name in ("_login_user", "user", "scope"):
        g.pop(name, None)


def sign_in(user: User) -> None:
    """Start a session for a user whose password was checked."""
    session.clear()  # a fresh session: nothing from before sign-in survives (fixation)
    session.permanent = True
    login_user(Principal(user))
    session["seen"] = int(time.time())


def sign_out() -> None:
    """End the session."""
    logout_user()
    session.clear()


def session_expired() -> bool:
    """True (and the session ended) when the last request was more than SESSION_MINUTES ago."""
    if not current_user.is_authenticated:
        return False
    now = int(time.time())
    seen = session.get("seen", 0)
    if now - seen > int(current_app.config["SESSION_MINUTES"]) * 60:
        sign_out()
        return True
    session["seen"] = now
    return False


def csrf_protect() -> None:
    """Check the CSRF token of a dashboard POST (Flask-WTF); a missing or bad one is 400."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    from flask_wtf.csrf import ValidationError, validate_csrf

    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as exc:
        raise DomainError(f"The form has expired or was not sent by this site ({exc}); reload the page and try again.", status=400) from None


def page_roles(*roles: str):
    """Pages: sign-in required (else a redirect to the log-in page), then one of ``roles`` (else 403)."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            g.scope = current_user.scope
            if roles and current_user.role not in roles:
                raise Forbidden(f"This page is for {' or '.join(roles)}; you are signed in as {current_user.role}.")
            return view(*args, **kwargs)

        return inner

    return wrap


def api_roles(*roles: str):
    """API: a valid personal access token (else 401), then one of ``roles`` (else 403)."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            from .api.common import bearer_token

            user = people.user_for_token(bearer_token())
            g.scope = people.Scope.of(user)
            g.user = user
            if roles and user.role not in roles:
                raise Forbidden(f"This needs a token of a {' or '.join(roles)}; this one is a {user.role}'s.")
            return view(*args, **kwargs)

        return inner

    return wrap


def scope() -> people.Scope:
    """The Scope of this request (set by page_roles / api_roles)."""
    return g.scope


def acting_user() -> User:
    """The User row of whoever is acting in this request."""
    if getattr(g, "user", None) is not None:
        return g.user
    if current_user.is_authenticated:
        return current_user.user
    raise Unauthorized("Sign in first.")
