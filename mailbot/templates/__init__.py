"""Mail templates shipped with mailbot (staff override them with outbox.templates_dir)."""
