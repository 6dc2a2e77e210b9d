urlpatterns: list = []  # recipients, quiet hours, preferences
