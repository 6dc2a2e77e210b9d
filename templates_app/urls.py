from django.urls import path

from . import api

urlpatterns = [
    path("templates", api.TemplateListView.as_view(), name="template-list"),
    path("templates/<str:code>", api.TemplateDetailView.as_view(), name="template-detail"),
    path(
        "templates/<str:code>/publish", api.TemplatePublishView.as_view(), name="template-publish"
    ),
    path(
        "templates/<str:code>/archive", api.TemplateArchiveView.as_view(), name="template-archive"
    ),
    path(
        "templates/<str:code>/restore", api.TemplateRestoreView.as_view(), name="template-restore"
    ),
    path(
        "templates/<str:code>/preview", api.TemplatePreviewView.as_view(), name="template-preview"
    ),
]
