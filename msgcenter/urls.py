from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tasks_app.public_views import unsubscribe_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("templates_app.urls")),
    path("api/v1/", include("channels_app.urls")),
    path("api/v1/", include("tasks_app.urls")),
    path("", include("channels_app.public_urls")),
    path("u/<str:token>", unsubscribe_view, name="unsubscribe"),
]

handler404 = "msgcenter.errors.handler404"
