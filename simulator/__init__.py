"""mailsim: an email delivery queue simulator for invoice emails."""

__version__ = "0.1.0"
