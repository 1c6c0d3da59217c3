from django.db import migrations, models
from django.db.models import F


def mark_earlier_pushes(apps, schema_editor):
    """Targets notified before this field existed were pushed then (or are found by polling): the
    beat must not push them all again after the upgrade."""
    RolloutTarget = apps.get_model("firmware", "RolloutTarget")  # noqa: N806 - the historical model
    RolloutTarget.objects.exclude(status="queued").filter(progress_at__isnull=False).update(pushed_at=F("progress_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("firmware", "0002_maintenancewindow"),
    ]

    operations = [
        migrations.AddField(
            model_name="rollouttarget",
            name="pushed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(mark_earlier_pushes, migrations.RunPython.noop),
    ]
