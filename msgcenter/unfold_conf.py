"""django-unfold settings: site title, sidebar navigation, dashboard callback."""

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

UNFOLD = {
    "SITE_TITLE": "msgcenter",
    "SITE_HEADER": "msgcenter",
    "SITE_SYMBOL": "notifications",
    "SHOW_LANGUAGES": True,
    "DASHBOARD_CALLBACK": "msgcenter.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": [
            {
                "title": _("Messages"),
                "items": [
                    {
                        "title": _("Dashboard"),
                        "icon": "dashboard",
                        "link": reverse_lazy("admin:index"),
                    },
                    {
                        "title": _("Templates"),
                        "icon": "description",
                        "link": reverse_lazy("admin:templates_app_messagetemplate_changelist"),
                    },
                    {
                        "title": _("Tasks"),
                        "icon": "task",
                        "link": reverse_lazy("admin:tasks_app_messagetask_changelist"),
                    },
                    {
                        "title": _("Deliveries"),
                        "icon": "send",
                        "link": reverse_lazy("admin:channels_app_deliveryrecord_changelist"),
                    },
                    {
                        "title": _("Recipients"),
                        "icon": "group",
                        "link": reverse_lazy("admin:tasks_app_recipient_changelist"),
                    },
                    {
                        "title": _("Channel accounts"),
                        "icon": "hub",
                        "link": reverse_lazy("admin:channels_app_channelaccount_changelist"),
                    },
                    {
                        "title": _("Quiet hours"),
                        "icon": "bedtime",
                        "link": reverse_lazy("admin:tasks_app_quiethours_changelist"),
                    },
                ],
            },
            {
                "title": _("Trace"),
                "collapsible": True,
                "items": [
                    {
                        "title": _("Interactions"),
                        "icon": "touch_app",
                        "link": reverse_lazy("admin:channels_app_interaction_changelist"),
                    },
                    {
                        "title": _("Task events"),
                        "icon": "timeline",
                        "link": reverse_lazy("admin:tasks_app_taskevent_changelist"),
                    },
                    {
                        "title": _("Template versions"),
                        "icon": "history",
                        "link": reverse_lazy("admin:templates_app_templateversion_changelist"),
                    },
                ],
            },
            {
                "title": _("Settings"),
                "collapsible": True,
                "items": [
                    {
                        "title": _("Recurring sends"),
                        "icon": "event_repeat",
                        "link": reverse_lazy("admin:tasks_app_recurringsend_changelist"),
                    },
                    {
                        "title": _("API clients"),
                        "icon": "key",
                        "link": reverse_lazy("admin:tasks_app_apiclient_changelist"),
                    },
                ],
            },
        ],
    },
}
