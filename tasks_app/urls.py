from .api import messages, preferences, recipients, recurring

urlpatterns = [
    *preferences.urlpatterns,
    *recipients.urlpatterns,
    *messages.urlpatterns,
    *recurring.urlpatterns,
]
