"""Loyalty e-mails: a transactional outbox (queue, then send) with log, file and SMTP senders."""
