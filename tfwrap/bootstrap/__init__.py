"""``tfwrap bootstrap``: a state bucket as the team's standard wants it (see ``standard``)."""
