"""Outbound campaigns beside the router: lists and attempts are rows, a scheduler picks due
targets (customer-local windows, DNC, retries per outcome), a dial-mode policy decides how many
to place, a channel adapter places them and reports outcomes through ``lifecycle``; answered
contacts reach operators as ordinary conversations (``omni.domain.outgoing``).

Design and ownership: docs/outbound.md.
"""
