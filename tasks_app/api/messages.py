urlpatterns: list = []  # messages, inbox
