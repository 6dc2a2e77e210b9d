urlpatterns: list = []  # channel accounts, provider callbacks
