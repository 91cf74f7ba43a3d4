"""``tfwrap audit``: every stack of a repository checked at once."""
