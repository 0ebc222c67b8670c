from django.db import models


class Cleanup(models.Model):
    """How many ``interop.forever`` calls with a tag have run their ``finally``.

    Kept in the database so every server process counts into the same row.
    """

    tag = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tag or '(no tag)'}: {self.count}"
