"""The admin home: delivery dashboard context for django-unfold."""


def dashboard_callback(request, context):
    return context
