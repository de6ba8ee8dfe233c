"""Transparency and governance from the policies: notice and data map (explain), exposure diff,
lint, retention (expire). Pure logic lives in its own modules; file and HTML writing apart."""
