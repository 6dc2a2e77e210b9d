from . import api, callbacks

urlpatterns = [*api.urlpatterns, *callbacks.urlpatterns]
