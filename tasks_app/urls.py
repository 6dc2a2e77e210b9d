from .api import messages, recipients

urlpatterns = [*recipients.urlpatterns, *messages.urlpatterns]
