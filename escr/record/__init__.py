"""The record itself: models, database, protocol events, child index, retention."""
