"""The console's two staff groups (issue 6): "Operator" manages templates, tasks,
channel accounts, quiet hours and recurring sends; "Viewer" sees the dashboard and every
list, read-only. Superusers keep everything; API clients and keys stay with them."""

from django.db import migrations

APPS = ("templates_app", "tasks_app", "channels_app")

OPERATOR = {
    "templates_app": {"messagetemplate": "acd", "templatecontent": "acd"},
    "tasks_app": {"messagetask": "ac", "recipient": "ac", "preference": "acd",
                  "quiethours": "acd", "recurringsend": "acd"},
    "channels_app": {"channelaccount": "acd"},
}
VERBS = {"a": "add", "c": "change", "d": "delete"}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; the groups need them now.
    for label in APPS:
        config = apps.get_app_config(label)
        if not getattr(config, "models_module", None):  # a migration state's app stub
            config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(Permission.objects.filter(content_type__app_label__in=APPS,
                                          codename__startswith="view_"))
    viewer, _ = Group.objects.get_or_create(name="Viewer")
    viewer.permissions.set(view)
    wanted = [(label, f"{VERBS[v]}_{model}") for label, models in OPERATOR.items()
              for model, verbs in models.items() for v in verbs]
    operator_perms = [p for p in Permission.objects.filter(content_type__app_label__in=APPS)
                      .select_related("content_type")
                      if (p.content_type.app_label, p.codename) in wanted]
    operator, _ = Group.objects.get_or_create(name="Operator")
    operator.permissions.set(view + operator_perms)


def drop_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Operator", "Viewer"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("channels_app", "0002_initial"),
        ("templates_app", "0001_initial"),
        ("tasks_app", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, drop_groups)]
