"""E-mail to customers: the mail outbox (``queue``), the messages (``compose``) and their
sending through SMTP (``smtp``)."""
