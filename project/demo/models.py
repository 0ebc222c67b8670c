from django.db import models

from streaming_app.changes import ChangeManager


class Cleanup(models.Model):
    """How many ``interop.forever`` calls with a tag have run their ``finally``.

    Kept in the database so every server process counts into the same row.
    """

    tag = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tag or '(no tag)'}: {self.count}"


class Note(models.Model):
    """A live list item: ``notes.watch`` streams the notes a user may see, then their changes.

    Everyone sees public notes; a signed-in user also sees their own.
    """

    owner = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.CASCADE, related_name="notes")
    text = models.CharField(max_length=500)
    public = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    objects = ChangeManager()  # update() and bulk writes publish to notes.watch too

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.text[:50]
