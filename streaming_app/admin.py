"""The admin: live calls (with actions), finished-call history, endpoint switches.

Every view goes through ``admin_site.admin_view`` (staff login, CSRF, no
caching) and a ``has_*_permission`` check on the model permissions:

* ``streaming_app.view_livecall``: the live page and its stream;
* ``streaming_app.terminate_livecall``: end a call, close a connection;
* ``streaming_app.publish_topic``: publish a test message;
* ``streaming_app.change_endpointswitch`` (and ``add_``): disable or enable an endpoint;
* the usual view/delete permissions of ``FinishedCall`` for the history.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import django
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from . import control
from .conf import streaming_settings
from .exceptions import StreamError
from .models import EndpointSwitch, FinishedCall, LiveCall
from .registry import registry
from .schema import current_document, example_arguments
from .admin_streams import LIVE_METHOD, NAMESPACE
from .topics import publish

if TYPE_CHECKING:
    # django-stubs declare these generic in their model; Django's classes take
    # no subscript at run time.
    _LiveCallAdmin = admin.ModelAdmin[LiveCall]
    _EndpointSwitchAdmin = admin.ModelAdmin[EndpointSwitch]
    _FinishedCallAdmin = admin.ModelAdmin[FinishedCall]
    _EndpointSwitchModelForm = forms.ModelForm[EndpointSwitch]
else:
    _LiveCallAdmin = _EndpointSwitchAdmin = _FinishedCallAdmin = admin.ModelAdmin
    _EndpointSwitchModelForm = forms.ModelForm

RESERVED_TOPIC_PREFIX = "streaming_app."

method_decorator_post = method_decorator(require_POST)


def endpoint_names() -> set[str]:
    """Names a switch may hold: every registered method and namespace, except the admin's own."""
    names: set[str] = set()
    for method in registry.methods():
        if method.namespace != NAMESPACE:
            names.update((method.name, method.namespace))
    return names


def announce_switches(end_open: list[str] | None = None) -> None:
    """Tell every server process, once the change is committed, that the switches changed."""
    transaction.on_commit(lambda: control.switches_changed(end_open))


def _bad_request(message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=400)


@admin.register(LiveCall)
class LiveCallAdmin(_LiveCallAdmin):
    """The live page, in place of a changelist (there is no table behind it)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("streaming_app.view_livecall")

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("streaming_app.terminate_livecall")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("streaming_app.publish_topic")

    def has_switch_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.has_perm("streaming_app.change_endpointswitch") and user.has_perm("streaming_app.add_endpointswitch")

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("terminate/", view(self.terminate_view), name="%s_%s_terminate" % info),
            path("publish/", view(self.publish_view), name="%s_%s_publish" % info),
            path("switch/", view(self.switch_view), name="%s_%s_switch" % info),
            path("explorer/", view(self.explorer_view), name="%s_%s_explorer" % info),
        ] + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        info = self.opts.app_label, self.opts.model_name
        config = {
            "websocket": streaming_settings.ADMIN_WEBSOCKET_URL,
            "method": LIVE_METHOD,
            "urls": {
                "terminate": reverse("admin:%s_%s_terminate" % info, current_app=self.admin_site.name),
                "publish": reverse("admin:%s_%s_publish" % info, current_app=self.admin_site.name),
                "switch": reverse("admin:%s_%s_switch" % info, current_app=self.admin_site.name),
                "history": reverse("admin:streaming_app_finishedcall_changelist", current_app=self.admin_site.name),
                "explorer": reverse("admin:%s_%s_explorer" % info, current_app=self.admin_site.name),
            },
            "can": {
                "terminate": self.has_terminate_permission(request),
                "publish": self.has_publish_permission(request),
                "switch": self.has_switch_permission(request),
            },
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Live calls",
            "config": config,
            # Django 6.1's admin styles breadcrumbs as <ol class="breadcrumbs"> of <li>s;
            # earlier releases as <div class="breadcrumbs"> with › separators.
            "breadcrumbs_as_list": django.VERSION >= (6, 1),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "streaming_app/admin/live.html", context)

    def explorer_view(self, request: HttpRequest) -> HttpResponse:
        """Every method with its kind, schemas and docstring, and a form running unary and server-stream calls.

        The page calls over the app's own protocol (client.js, the admin's
        session), so what it shows is what any client gets.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        document = current_document()
        methods = []
        for name, operation in document["operations"].items():
            contract = operation["x-streaming"]
            methods.append({
                "name": name,
                "kind": contract["kind"],
                "description": operation.get("description", ""),
                "runnable": contract["kind"] in ("unary", "server_stream"),
                "example": json.dumps(example_arguments(contract["arguments"])),
                "parts": [
                    (part, json.dumps(contract[part], indent=2))
                    for part in ("arguments", "item", "client_item", "result") if part in contract
                ],
            })
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Method explorer",
            "methods": methods,
            "components": json.dumps(document["components"]["schemas"], indent=2),
            "config": {"websocket": streaming_settings.ADMIN_WEBSOCKET_URL},
            "live_url": reverse("admin:%s_%s_changelist" % (self.opts.app_label, self.opts.model_name),
                                current_app=self.admin_site.name),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "streaming_app/admin/explorer.html", context)

    @staticmethod
    def _form(request: HttpRequest) -> dict[str, Any]:
        if request.content_type == "application/json":
            try:
                data = json.loads(request.body or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        return request.POST.dict()

    @method_decorator_post
    def terminate_view(self, request: HttpRequest) -> JsonResponse:
        """End one call (``call`` given) or close a connection with 4000, on its own process."""
        if not self.has_terminate_permission(request):
            raise PermissionDenied
        form = self._form(request)
        process, conn, call = form.get("process"), form.get("conn"), form.get("call")
        if not isinstance(process, str) or not process or not isinstance(conn, str) or not conn:
            return _bad_request("Give the call's process and connection.")
        call_id: int | None = None
        if call is not None and call != "":
            try:
                call_id = int(call)
            except (TypeError, ValueError):
                return _bad_request("The call id must be an integer.")
        try:
            control.terminate(process, conn, call_id)
        except StreamError as exc:
            return JsonResponse({"ok": False, "error": exc.message}, status=503)
        what = f"call {call_id} of connection {conn}" if call_id is not None else f"connection {conn}"
        return JsonResponse({"ok": True, "terminated": what, "process": process})

    @method_decorator_post
    def publish_view(self, request: HttpRequest) -> JsonResponse:
        """Publish a test message (JSON, or else text) on a topic."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        form = self._form(request)
        topic, text = form.get("topic"), form.get("data", "")
        if not isinstance(topic, str) or topic.startswith(RESERVED_TOPIC_PREFIX):
            return _bad_request(f"Topics starting with {RESERVED_TOPIC_PREFIX!r} are streaming_app's own.")
        try:
            data = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            data = text
        try:
            eid = publish(topic, data)
        except StreamError as exc:
            return JsonResponse({"ok": False, "error": exc.message}, status=400 if exc.code.http_status == 400 else 503)
        return JsonResponse({"ok": True, "topic": topic, "eid": eid})

    @method_decorator_post
    def switch_view(self, request: HttpRequest) -> JsonResponse:
        """Disable (optionally ending open calls) or enable a method or a namespace."""
        if not self.has_switch_permission(request):
            raise PermissionDenied
        form = self._form(request)
        name, action = form.get("name"), form.get("action")
        end_open = form.get("end_open") in (True, "1", "true", "on")
        if name not in endpoint_names():
            return _bad_request(f"{name!r} is neither a method nor a namespace (the admin's own cannot be switched).")
        if action not in ("disable", "enable"):
            return _bad_request("The action is 'disable' or 'enable'.")
        disabled = action == "disable"
        with transaction.atomic():
            EndpointSwitch.objects.update_or_create(
                name=name, defaults={"disabled": disabled, "changed_by": request.user.get_username()[:150]}
            )
            announce_switches([name] if disabled and end_open else None)
        return JsonResponse({"ok": True, "name": name, "disabled": disabled, "end_open": disabled and end_open})


class EndpointSwitchForm(_EndpointSwitchModelForm):
    class Meta:
        model = EndpointSwitch
        fields = ["name", "disabled", "note"]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if name not in endpoint_names():
            raise forms.ValidationError("Not a registered method or namespace (the admin's own cannot be switched).")
        return name


@admin.register(EndpointSwitch)
class EndpointSwitchAdmin(_EndpointSwitchAdmin):
    form = EndpointSwitchForm
    list_display = ["name", "disabled", "note", "changed_at", "changed_by"]
    list_filter = ["disabled"]
    search_fields = ["name", "note"]
    actions = ["disable_endpoints", "disable_endpoints_and_end_calls", "enable_endpoints"]

    def save_model(self, request: HttpRequest, obj: EndpointSwitch, form: Any, change: bool) -> None:
        obj.changed_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)
        announce_switches()

    def delete_model(self, request: HttpRequest, obj: EndpointSwitch) -> None:
        super().delete_model(request, obj)
        announce_switches()

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        super().delete_queryset(request, queryset)
        announce_switches()

    def _switch(self, request: HttpRequest, queryset: Any, disabled: bool, end_open: bool) -> None:
        names = list(queryset.values_list("name", flat=True))
        queryset.update(disabled=disabled, changed_by=request.user.get_username()[:150])
        announce_switches(names if disabled and end_open else None)
        state = "disabled" if disabled else "enabled"
        self.message_user(request, f"{len(names)} endpoint(s) {state}.", messages.SUCCESS)

    @admin.action(description="Disable selected endpoints (new calls get 'unavailable')", permissions=["change"])
    def disable_endpoints(self, request: HttpRequest, queryset: Any) -> None:
        self._switch(request, queryset, True, False)

    @admin.action(description="Disable selected endpoints and end their open calls", permissions=["change"])
    def disable_endpoints_and_end_calls(self, request: HttpRequest, queryset: Any) -> None:
        self._switch(request, queryset, True, True)

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable_endpoints(self, request: HttpRequest, queryset: Any) -> None:
        self._switch(request, queryset, False, False)


@admin.register(FinishedCall)
class FinishedCallAdmin(_FinishedCallAdmin):
    """History, read-only: rows are written by the server processes, never edited."""

    list_display = [
        "method", "transport", "username", "client", "end_reason", "error_code", "calls",
        "duration_display", "items_in", "items_out", "started_at", "ended_at", "process",
    ]
    list_filter = ["end_reason", "error_code", "transport", "kind", "namespace", "ended_at"]
    search_fields = ["method", "username", "client", "connection_id", "process"]
    date_hierarchy = "ended_at"
    list_per_page = 100
    show_full_result_count = False  # counting a large history on every page is slow

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="duration", ordering="duration")
    def duration_display(self, obj: FinishedCall) -> str:
        return f"{obj.duration:.3f} s"
