"""Channel adapters (widget, Telegram, voice), one package each; see docs/adapters.md.

Adapters import the core (``omni``); the core never imports them.
"""
